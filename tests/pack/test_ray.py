"""`tpt pack --executor ray` on a real local Ray cluster (127.0.0.1 only): Ray workers read and tokenize
the input, one sequencer task packs, and the output directory is byte-identical to --executor local: also
for a run killed with --executor local and finished on Ray, with the tpt process barred from the input
files, and with a tokenizing worker, the sequencer or the driver SIGKILLed mid-run (committed shards are
not written again)."""

from __future__ import annotations

import builtins
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.pack.test_kill_resume import WORDS, corpus, files, pack
from tpt.cli import main

OPTIONS = ["--seq-len", "16", "--shard-tokens", "64", "--batch-size", "8", "--disable-check", "copy",
           "--disable-check", "repetition", "--min-thinking-words", "10", "--no-progress"]  # fmt: skip
MIX = ["--mix", "0.3", "--weights", "a=1.5", "--shuffle-buffer", "25", "--megatron"]


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    from tpt.core.raycluster import init_local, is_loopback, node_addresses

    # address="local": a new cluster, even while another one of this machine is running
    init_local(ray, address="local", num_cpus=2, include_dashboard=False, logging_level="warning",
               log_to_driver=False)  # fmt: skip
    try:
        assert all(is_loopback(a) for a in node_addresses(ray))
        yield ray
    finally:
        ray.shutdown()


def same_output(a: Path, b: Path) -> None:
    made, want = files(a), files(b)
    assert sorted(made) == sorted(want)
    for name in want:
        if name not in ("manifest.json", "stats.json"):
            assert made[name] == want[name], name
    stats, expected = json.loads(made["stats.json"]), json.loads(want["stats.json"])
    stats.pop("wall_seconds"), expected.pop("wall_seconds")
    assert stats == expected


def big_corpus(root: Path, files: int = 8, per_file: int = 60) -> Path:
    """`files` record files of two sources, ids repeating across files, a malformed line in each."""
    root.mkdir()
    for f in range(files):
        with (root / f"part-{f:08d}.jsonl").open("w") as out:
            for i in range(per_file):
                n = 20 + (i * 7 + f) % 19
                thinking = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(n if i % 9 else 5))
                text = " ".join(WORDS[(i * 3 + k + f) % len(WORDS)] for k in range(4 + i % 6))
                rec = {
                    "id": i if i % 6 == 0 else f"{f}-{i}",
                    "text": text,
                    "thinking": thinking,
                    "source": "ab"[i % 2],
                }
                out.write((json.dumps(rec) if i != 17 else "{not json") + "\n")
    return root


def test_ray_executor_packs_what_local_packs_and_resumes_a_local_run(tmp_path, word_tok, ray_cluster):
    src, _ = corpus(tmp_path / "records")
    args = [str(src), "--tokenizer", str(word_tok), *OPTIONS, *MIX]
    local, on_ray, resumed = tmp_path / "local", tmp_path / "ray", tmp_path / "resumed"
    assert main(["pack", *args, "--output", str(local), "--workers", "0"]) == 0
    # Units of 300 bytes: several per file, batches cut where a local run does not cut them.
    assert main(["pack", *args, "--output", str(on_ray), "--executor", "ray", "--unit-bytes", "300"]) == 0
    same_output(on_ray, local)
    # Killed before its 3rd commit with --executor local, finished on Ray.
    assert pack(tmp_path, [*args, "--workers", "0"], resumed, tmp_path / "n1", 3) == -9
    assert (resumed / "parts").is_dir()
    assert main(["pack", *args, "--output", str(resumed), "--executor", "ray", "--unit-bytes", "500"]) == 0
    same_output(resumed, local)


def test_the_tpt_process_never_opens_an_input_file(tmp_path, word_tok, ray_cluster, monkeypatch):
    """The driver only keeps the books: with every input file barred from it (and the stage's own reading
    and sequencing functions), the pack on Ray is still a local pack, --control shuffled and keep-first
    duplicates included (the sequencer drops what the workers tokenized for nothing)."""
    src, _ = corpus(tmp_path / "records")
    args = [str(src), "--tokenizer", str(word_tok), *OPTIONS, "--control", "shuffled", "--shuffle-buffer",
            "10", "--duplicate-ids", "keep-first"]  # fmt: skip
    assert main(["pack", *args, "--output", str(tmp_path / "local"), "--workers", "0"]) == 0
    real_open, barred = builtins.open, str(src)

    def guarded_open(file, *a, **k):
        assert not str(file).startswith(barred), f"the driver opened {file}"
        return real_open(file, *a, **k)

    def never(*a, **k):
        raise AssertionError("the driver read or packed records")

    monkeypatch.setattr(builtins, "open", guarded_open)
    for name in (
        "tpt.pack.stage._prepare_output",
        "tpt.pack.stage.open_inputs",
        "tpt.pack.stage.assemble",
        "tpt.formats.reading.parse_line",
        "tpt.pack.inputunits.parse_line",
    ):
        monkeypatch.setattr(name, never)
    assert (
        main(["pack", *args, "--output", str(tmp_path / "ray"), "--executor", "ray", "--unit-bytes", "400"])
        == 0
    )
    monkeypatch.undo()
    same_output(tmp_path / "ray", tmp_path / "local")


def titled(prefix: str) -> list[int]:
    """The processes of this test's cluster (this process's descendants: never another cluster's on the
    machine) whose title starts with `prefix`."""
    import psutil

    found = []
    for p in psutil.Process().children(recursive=True):
        try:
            if (p.cmdline() or [""])[0].startswith(prefix):
                found.append(p.pid)
        except psutil.Error:
            pass
    return found


def sigkill(pids: list[int]) -> list[int]:
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return pids


def kill_after_commit(out: Path, commit: int, kill, stop: threading.Event) -> dict:
    """Once commit `commit` is made, call kill() until it kills something (it returns what); returns what
    it saw: what was killed and the (inode, mtime) of every shard the commit before covers (committed:
    never written again)."""
    seen: dict = {}

    def watch() -> None:
        while not stop.is_set() and not seen:
            if (out / "parts" / f"{commit:05d}.json").exists():
                covered = json.loads((out / "parts" / f"{commit - 1:05d}.json").read_text())["shards"]
                shards = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(out.glob("shard-*.npy"))
                          if int(p.name[6:11]) < covered}  # fmt: skip
                if killed := kill():
                    seen.update(killed=killed, shards=shards, finished=(out / "index.json").exists())
            time.sleep(0.001)

    threading.Thread(target=watch, daemon=True).start()
    return seen


def not_redone(out: Path, seen: dict) -> None:
    assert seen.get("killed") and not seen["finished"], seen
    assert seen["shards"], "some shards were committed before the kill"
    for name, stamp in seen["shards"].items():
        path = out / name
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == stamp, f"{name} was written again"


@pytest.mark.parametrize("victim", ["ray::_prepare_task", "ray::_sequence"])
def test_a_worker_or_the_sequencer_killed_mid_run_changes_nothing(tmp_path, word_tok, ray_cluster, victim):
    """Ray runs the dead task again; a new sequencer resumes from the last commit."""
    src = big_corpus(tmp_path / "records")
    args = [str(src), "--tokenizer", str(word_tok), *OPTIONS, *MIX]
    assert main(["pack", *args, "--output", str(tmp_path / "local"), "--workers", "0"]) == 0
    stop = threading.Event()
    out = tmp_path / "ray"
    seen = kill_after_commit(out, 3, lambda: sigkill(titled(victim)[:1]), stop)
    assert main(["pack", *args, "--output", str(out), "--executor", "ray", "--unit-bytes", "1000"]) == 0
    stop.set()
    not_redone(out, seen)
    same_output(out, tmp_path / "local")


@pytest.mark.parametrize("resume", ["ray", "local"])
def test_the_driver_killed_then_the_same_command_finishes(tmp_path, word_tok, ray_cluster, resume):
    """kill -9 of the tpt process takes its sequencer along; the same command resumes from its commits
    (and so does a local run: a run started on Ray finishes locally)."""
    src = big_corpus(tmp_path / "records")
    args = [str(src), "--tokenizer", str(word_tok), *OPTIONS, *MIX]
    assert main(["pack", *args, "--output", str(tmp_path / "local"), "--workers", "0"]) == 0
    out = tmp_path / "ray"
    address = ray_cluster.get_runtime_context().gcs_address
    argv = [sys.executable, "-m", "tpt", "pack", *args, "--output", str(out), "--executor", "ray",
            "--address", address, "--unit-bytes", "2000"]  # fmt: skip
    driver = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop = threading.Event()
    seen = kill_after_commit(out, 3, lambda: sigkill([driver.pid]), stop)
    driver.wait(timeout=120)
    stop.set()
    assert driver.returncode == -9
    deadline = time.monotonic() + 30  # the sequencer goes with its driver
    while titled("ray::_sequence") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not titled("ray::_sequence"), "the dead driver's sequencer still runs"
    again = ["--executor", "ray", "--unit-bytes", "2000"] if resume == "ray" else ["--workers", "0"]
    assert main(["pack", *args, "--output", str(out), *again]) == 0
    not_redone(out, seen)
    same_output(out, tmp_path / "local")


def test_an_error_in_the_sequencer_is_one_line_in_the_driver(tmp_path, word_tok, ray_cluster, capsys):
    src, _ = corpus(tmp_path / "records")
    args = [str(src), "--tokenizer", str(tmp_path / "no-such-tokenizer"), *OPTIONS, "--executor", "ray"]
    assert main(["pack", *args, "--output", str(tmp_path / "out")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no-such-tokenizer" in err[0] and "Traceback" not in err[0], err
