"""One real local Ray cluster per test module (ray.init costs ~4 s and ~0.5 GB), on 127.0.0.1 only, and a local
stub server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    from tpt.core.raycluster import init_local

    init_local(ray, num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def stub():
    """The OpenAI-compatible stub in this process; deterministic answers, so runs can be compared."""
    from tpt.testing.openai_stub import StubConfig, StubServer

    with StubServer(StubConfig(latency_ms=20, words=12)) as server:
        yield server


def _write_corpus(path: Path, n: int, bad_lines: dict[int, str] | None = None) -> Path:
    """n JSONL lines with ids 0..n-1; `bad_lines` replaces some lines with broken ones."""
    lines = [
        json.dumps({"id": i, "text": f"document {i} " + "word " * (i % 9), "source": "t"}) for i in range(n)
    ]
    for i, line in (bad_lines or {}).items():
        lines[i] = line
    path.write_text("\n".join(lines) + "\n")
    return path


def _read_outcomes(out: Path) -> tuple[list[dict], list[dict]]:
    """(records, failure lines) of committed shards, each sorted by input index."""
    recs, fails = [], []
    for p in sorted((out / "shards").glob("part-*.jsonl")):
        rows = [json.loads(x) for x in p.read_text().splitlines()]
        (fails if p.name.endswith(".failures.jsonl") else recs).extend(rows)
    return sorted(recs, key=lambda r: r["input"]["index"]), sorted(fails, key=lambda f: f["index"])


@pytest.fixture
def write_corpus():
    return _write_corpus


@pytest.fixture
def read_outcomes():
    return _read_outcomes
