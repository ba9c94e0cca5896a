"""Two real `tpt augment` processes on one --output (a relaunch while the old job still runs).

Before the output lock the second one wrote beside the first (duplicates, a corrupt line) and died with
a traceback. Now it fails at once with one line naming the holder; after `kill -9` of the holder the
next run takes the lock over and finishes exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tpt.storage.outputlock import LOCK_NAME
from tpt.testing.openai_stub import StubProcess, augment_argv


def augment_cmd(src: Path, out: Path, base_url: str) -> list[str]:
    options = "--concurrency 2 --shard-size 8 --no-progress".split()
    return [sys.executable, "-m", "tpt", *augment_argv(src, out, base_url, *options)]


def outcomes_on_disk(out: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in (out / "shards").glob("part-*") if ".jsonl" in p.name)


def test_a_second_writer_fails_at_once_and_a_killed_ones_lock_is_taken_over(tmp_path):
    n_docs = 48
    src = tmp_path / "docs.jsonl"
    src.write_text(
        "".join(
            json.dumps({"id": f"d{i}", "text": f"document {i} " + "word " * (i % 5)}) + "\n"
            for i in range(n_docs)
        )
    )
    out = tmp_path / "out"
    with StubProcess(["--latency-ms", "80", "--words", "8"], max_seconds=120) as stub:
        first = subprocess.Popen(
            augment_cmd(src, out, stub.base_url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 60
        while (not (out / "shards").is_dir() or outcomes_on_disk(out) < 4) and time.monotonic() < deadline:
            assert first.poll() is None, first.stderr.read().decode()
            time.sleep(0.02)
        second = subprocess.run(
            augment_cmd(src, out, stub.base_url), capture_output=True, text=True, timeout=60
        )
        assert first.poll() is None, "the first run should still be running"
        assert second.returncode == 2
        err = second.stderr.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert f"is in use by `tpt augment` (pid {first.pid}" in err and "re-run" in err
        assert json.loads((out / LOCK_NAME).read_text())["pid"] == first.pid

        while outcomes_on_disk(out) < 12 and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        third = subprocess.run(
            augment_cmd(src, out, stub.base_url), capture_output=True, text=True, timeout=120
        )
    assert third.returncode == 0, third.stderr
    assert f"took over the lock of {out} from `tpt augment` (pid {first.pid}" in third.stderr
    records = [
        json.loads(line)
        for p in sorted((out / "shards").glob("part-*.jsonl"))
        if not p.name.endswith(".failures.jsonl")
        for line in p.read_text().splitlines()
    ]
    assert sorted(r["id"] for r in records) == sorted(f"d{i}" for i in range(n_docs))  # exactly once
    assert (out / "failures.jsonl").read_text() == ""
    assert (out / LOCK_NAME).read_text() == ""  # released cleanly at the end
