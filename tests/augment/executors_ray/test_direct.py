"""`--ray-reads workers` (the default): workers read their own input ranges and commit their own shards.
The output directory is byte for byte a local run's, and a run started on one finishes on the other."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from tpt.augment import stage
from tpt.augment.backends.base import SamplingParams
from tpt.augment.executors.ray.executor import run as run_ray
from tpt.augment.executors.ray.options import RayOptions
from tpt.augment.executors.ray.ranges import index_file, plan_segments, read_segment
from tpt.augment.stage import AugmentConfig
from tpt.formats.corpus import iter_items


def make_cfg(srcs: list[Path], out: Path, base_url: str, **kw) -> AugmentConfig:
    return AugmentConfig(
        inputs=[str(s) for s in srcs],
        output=out,
        backend="openai",
        backend_options={"model": "stub", "base_url": base_url, "concurrency": 2, "max_retries": 1},
        sampling=SamplingParams(max_tokens=64, seed=3),
        progress=False,
        shard_size=4,
        **kw,
    )


def corpus(tmp_path: Path) -> list[Path]:
    """Two files: a shard spans them; blank lines, a BOM and bad lines on the way."""
    a = tmp_path / "a.jsonl"
    lines = [json.dumps({"id": i, "text": f"document {i} " + "word " * (i % 7)}) for i in range(11)]
    lines[3], lines[8] = "{not json", json.dumps({"id": 8})
    a.write_bytes(
        b"\xef\xbb\xbf" + ("\n".join(lines[:6]) + "\n\n  \n" + "\n".join(lines[6:]) + "\n").encode()
    )
    b = tmp_path / "b.jsonl"
    b.write_text("".join(json.dumps({"id": 100 + i, "text": f"more text {i}"}) + "\n" for i in range(7)))
    return [a, b]


def tree(out: Path) -> dict[str, bytes]:
    """Every file of the output a run's result is: the shards and failures.jsonl. A stats sidecar's
    `ids` list is in completion order, locally too (shards.py), so it is compared sorted."""
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in (out / "shards").iterdir()}
    for name in [n for n in files if n.endswith(".stats.json")]:
        stats = json.loads(files[name])
        files[name] = json.dumps({**stats, "ids": sorted(stats["ids"])}).encode()
    return {**files, "failures.jsonl": (out / "failures.jsonl").read_bytes()}


def test_ranges_read_what_iter_items_reads(tmp_path):
    gz = tmp_path / "c.jsonl.gz"  # no seek: read from its start
    gz.write_bytes(gzip.compress(b"".join(b'{"id": "c%d", "text": "x"}\n\n' % i for i in range(5))))
    srcs = [*corpus(tmp_path), gz]
    names = [str(s) for s in srcs]
    index = [index_file(n, 3) for n in names]
    assert index[2] == (5, []) and [m[0] for m in index[0][1]] == [0, 3, 6, 9]
    everything = list(iter_items(srcs))
    assert sum(n for n, _ in index) == len(everything) == 23
    counts, marks = [n for n, _ in index], [m for _, m in index]
    got = []
    for start in range(0, 23, 5):
        for seg in plan_segments(names, counts, marks, start, min(23, start + 5)):
            got.extend(read_segment(seg))
    assert got == everything


def test_ray_workers_write_a_local_runs_bytes_and_resume_each_other(ray_cluster, stub, tmp_path):
    srcs = corpus(tmp_path)
    local = stage.run(make_cfg(srcs, tmp_path / "local", stub.base_url))
    expected = tree(tmp_path / "local")
    assert local.complete and local.records == 16

    dist = run_ray(make_cfg(srcs, tmp_path / "ray", stub.base_url), RayOptions(workers=2))
    assert tree(tmp_path / "ray") == expected
    assert (dist.records, dist.failures, dist.input_items, dist.complete) == (16, 2, 18, True)
    assert dist.new_records_this_run == 16

    # Started locally (stopped inside shard 2), finished on Ray; then the other way round.
    stage.run(make_cfg(srcs, tmp_path / "l2r", stub.base_url, limit=10))
    finished = run_ray(make_cfg(srcs, tmp_path / "l2r", stub.base_url), RayOptions(workers=2))
    assert tree(tmp_path / "l2r") == expected and finished.complete
    assert finished.new_records_this_run + finished.new_failures_this_run == 8
    run_ray(make_cfg(srcs, tmp_path / "r2l", stub.base_url, limit=7), RayOptions(workers=2))
    again = stage.run(make_cfg(srcs, tmp_path / "r2l", stub.base_url))
    assert tree(tmp_path / "r2l") == expected and again.complete
    assert again.new_records_this_run + again.new_failures_this_run == 11
