"""`tpt pack` writes the same bytes whatever the worker count, batch size or piece cache."""

from __future__ import annotations

import json
import random
from importlib import resources
from pathlib import Path

import pytest

from tpt.pack.stage import PackConfig, run


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path, dict[str, float]]:
    """Real documents with synthetic thinking, bad lines among them, and a byte-level BPE."""
    from tpt.tokenizer.stage import TokenizerConfig
    from tpt.tokenizer.stage import run as train_tokenizer

    root = tmp_path_factory.mktemp("workers")
    sample = resources.files("tpt").joinpath("data/sample_corpus")
    docs = [
        json.loads(line)
        for p in sorted(sample.iterdir())
        if p.name.endswith(".jsonl")
        for line in p.read_text().splitlines()
    ]
    rng = random.Random(0)
    lines = []
    for copy in range(3):
        for doc in docs:
            words = doc["text"].split()
            rng.shuffle(words)
            record = {
                "id": f"{doc['id']}#{copy}",
                "text": doc["text"],
                "thinking": "Let me think.  " + " ".join(words),
                "finish_reason": "stop",
                "source": doc["source"],
            }
            lines.append(json.dumps(record))
    lines[5] = "{not json"
    lines[9] = json.dumps({**json.loads(lines[9]), "finish_reason": "length"})
    lines[17] = json.dumps({k: v for k, v in json.loads(lines[17]).items() if k != "thinking"})
    path = root / "augmented.jsonl"
    path.write_text("\n".join(lines) + "\n")
    train_tokenizer(
        TokenizerConfig(corpus=[str(path)], output=root / "tok", vocab_size=1500, think_tokens=True)
    )
    sources = sorted({d["source"] for d in docs})
    return path, root / "tok", {sources[0]: 0.5, sources[1]: 2.0}


def _pack(path: Path, tok: Path, weights: dict[str, float], out: Path, **kw) -> Path:
    run(
        PackConfig(
            inputs=(str(path),),
            output=out,
            tokenizer=str(tok),
            seq_len=512,
            shuffle_buffer=64,
            shard_tokens=512 * 100,
            raw_fraction=0.3,
            weights=weights,
            megatron=True,
            **kw,
        ),
        log=lambda *_: None,
    )
    return out


def _files(out: Path) -> dict[str, bytes]:
    files = {}
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            data = p.read_bytes()
            if p.name == "stats.json":
                stats = json.loads(data)
                stats.pop("wall_seconds")
                data = json.dumps(stats, sort_keys=True).encode()
            files[str(p.relative_to(out))] = data
    return files


def test_workers_batches_and_piece_cache_change_nothing_in_the_output(corpus, tmp_path):
    from tpt.formats.student import load_student_tokenizer
    from tpt.pack.pieces import piece_encoder_for

    path, tok, weights = corpus
    assert piece_encoder_for(load_student_tokenizer(tok).tokenizer) is not None
    reference = _files(_pack(path, tok, weights, tmp_path / "ref", workers=0, piece_cache=0))
    stats = json.loads((tmp_path / "ref" / "stats.json").read_text())
    assert stats["records"]["skipped"] == 3 and stats["raw_samples"] > 0
    assert stats["records"]["downsampled"] > 0
    assert len(reference) > 8
    for name, kw in {
        "two-workers": {"workers": 2},
        "one-worker-small-batches": {"workers": 1, "batch_size": 7, "batch_chars": 5000},
        "in-process-pieces": {"workers": 0},
        "tiny-cache": {"workers": 2, "piece_cache": 16},
    }.items():
        got = _files(_pack(path, tok, weights, tmp_path / name, **kw))
        assert got.keys() == reference.keys(), name
        for key in reference:
            assert got[key] == reference[key], f"{name}: {key}"


def test_a_worker_that_dies_is_a_clear_error_not_a_hang():
    import os

    from tpt.core.errors import TptError
    from tpt.pack.workers import Job, Preparer, WorkerPool

    class Dying(Preparer):
        def __call__(self, job):
            os._exit(3)

    with WorkerPool(Dying(None, None, None), workers=1) as pool:
        with pytest.raises(TptError, match="worker process died"):
            for _ in range(4):
                list(pool.submit(Job(records=[], flags=[])))
            list(pool.drain())


def test_spawned_workers_get_the_same_ids(corpus):
    """Where there is no fork (macOS, Windows), the preparer travels pickled to spawned workers."""
    from tpt.formats.reading import read_records
    from tpt.formats.student import load_student_tokenizer
    from tpt.pack.pieces import piece_encoder_for
    from tpt.pack.workers import Job, Preparer, WorkerPool

    path, tok, _ = corpus
    tokenizer = load_student_tokenizer(tok).tokenizer
    records = [r for r in read_records([path]) if hasattr(r, "thinking")][:20]
    job = Job(records=records, flags=[(False,)] * len(records))
    local = Preparer(tokenizer, None, None)(job)
    with WorkerPool(Preparer(tokenizer, None, piece_encoder_for(tokenizer)), 1, "spawn") as pool:
        [(_, remote)] = list(pool.submit(job)) + list(pool.drain())
    assert remote.texts == local.texts
    assert (remote.encoded.ids == local.encoded.ids).all()
    assert (remote.encoded.offsets == local.encoded.offsets).all()


def test_workers_leave_when_pack_is_killed(tmp_path):
    """kill -9 of the main process must not leave its workers blocked forever."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = """
import sys, time
from tpt.pack.workers import Job, Preparer, WorkerPool

class Slow(Preparer):
    def __call__(self, job):
        time.sleep(60)

pool = WorkerPool(Slow(None, None, None), workers=2)
for _ in range(4):
    list(pool.submit(Job(records=[], flags=[])))
print(" ".join(str(p) for p in pool._pool._processes), flush=True)
time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(p) for p in proc.stdout.readline().split()]
        assert len(workers) == 2
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(")")[-1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while any(map(alive, workers)) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in workers if alive(p)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"workers {left} outlived the killed main process"
