"""`tpt augment --executor ray` on a real local Ray cluster (2 CPUs) with the real openai backend against
the local stub server: the same output as a single-machine run, and exactly once when a worker or the
whole job is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tpt.augment import stage
from tpt.augment.backends.base import SamplingParams
from tpt.augment.executors.ray.executor import RayExecutor
from tpt.augment.executors.ray.executor import run as run_ray
from tpt.augment.executors.ray.options import RayOptions
from tpt.augment.stage import AugmentConfig
from tpt.core.errors import BackendError, ConfigError
from tpt.testing.openai_stub import augment_argv


def make_cfg(src: Path, out: Path, base_url: str, **kw) -> AugmentConfig:
    options = {"model": "stub", "base_url": base_url, "concurrency": 2, "max_retries": 1}
    options.update(kw.pop("options", {}))
    return AugmentConfig(
        inputs=[str(src)],
        output=out,
        backend="openai",
        backend_options=options,
        sampling=SamplingParams(max_tokens=64, seed=3),
        progress=False,
        **kw,
    )


def committed(out: Path) -> list[Path]:
    return [p for p in (out / "shards").glob("part-*.jsonl") if not p.name.endswith(".failures.jsonl")]


def without_timing(summary) -> dict:
    return {k: v for k, v in summary.to_json().items() if k != "wall_seconds"}


def test_ray_run_writes_the_same_output_as_a_local_run(
    ray_cluster, stub, tmp_path, write_corpus, read_outcomes
):
    src = write_corpus(tmp_path / "docs.jsonl", 23, bad_lines={4: "{not json", 9: json.dumps({"id": 9})})
    local = stage.run(make_cfg(src, tmp_path / "local", stub.base_url, shard_size=5))
    dist = run_ray(make_cfg(src, tmp_path / "ray", stub.base_url, shard_size=5), RayOptions(workers=2))

    assert without_timing(dist) == without_timing(local)
    # the driver-in-the-data-path mode gives the same run
    via_driver = RayOptions(workers=2, reads="driver")
    drv = run_ray(make_cfg(src, tmp_path / "drv", stub.base_url, shard_size=5), via_driver)
    assert without_timing(drv) == without_timing(local)
    assert read_outcomes(tmp_path / "drv") == read_outcomes(tmp_path / "local")
    assert (
        dist.complete
        and dist.records == 21
        and dist.failures_by_reason == {"malformed_line": 1, "missing_field": 1}
    )
    names = sorted(p.name for p in (tmp_path / "local" / "shards").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "ray" / "shards").iterdir())
    assert len(committed(tmp_path / "ray")) == 5  # 23 items in shards of 5
    assert read_outcomes(tmp_path / "ray") == read_outcomes(tmp_path / "local")  # records byte-equal
    failures = sorted((tmp_path / "ray" / "failures.jsonl").read_text().splitlines())
    assert failures == sorted((tmp_path / "local" / "failures.jsonl").read_text().splitlines())
    # the manifest binds the directory to the same config: a local re-run resumes it with nothing to do
    again = stage.run(make_cfg(src, tmp_path / "ray", stub.base_url, shard_size=5))
    assert again.new_records_this_run == 0 and again.complete


@pytest.mark.parametrize("reads", ["workers", "driver"])
def test_a_killed_worker_loses_nothing_and_duplicates_nothing(
    ray_cluster, tmp_path, write_corpus, read_outcomes, reads
):
    from tpt.testing.openai_stub import StubConfig, StubServer

    src = write_corpus(tmp_path / "docs.jsonl", 40)
    out = tmp_path / "out"
    with StubServer(StubConfig(latency_ms=150, words=8)) as slow:
        cfg = make_cfg(src, out, slow.base_url, shard_size=3)
        executor = RayExecutor(RayOptions(workers=2, reads=reads))
        result: dict = {}
        runner = threading.Thread(target=lambda: result.update(executor.run_stage(cfg).to_json()))
        runner.start()
        try:
            deadline = time.monotonic() + 60
            while not committed(out) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert committed(out) and len(committed(out)) < 14, "kill the worker mid-run"
            os.kill(executor.workers[0]["pid"], signal.SIGKILL)  # a real kill -9 of the actor process
        finally:
            runner.join(timeout=120)
            executor.shutdown()
    assert result["complete"] and result["records"] == 40 and result["failures"] == 0
    recs, fails = read_outcomes(out)
    assert [r["id"] for r in recs] == list(range(40)) and fails == []  # each document exactly once
    assert executor.pool.worker_deaths == 1 and executor.pool.units_resent >= 1
    assert not list((out / "shards").glob("*.partial"))


def test_a_killed_job_resumes_exactly_once_from_another_driver(
    ray_cluster, tmp_path, write_corpus, read_outcomes
):
    """`tpt augment --executor ray --address ADDR` as a process, killed with SIGKILL, then run again."""
    src = write_corpus(tmp_path / "docs.jsonl", 36)
    out = tmp_path / "out"
    address = ray_cluster.get_runtime_context().gcs_address
    with StubProcessForTest(latency_ms=250) as base_url:
        options = "--concurrency 1 --shard-size 2 --max-thinking-tokens 64 --seed 3 --no-progress".split()
        options += ["--executor", "ray", "--address", address, "--workers", "2"]
        cmd = [sys.executable, "-m", "tpt", *augment_argv(src, out, base_url, *options)]
        first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 90
            while len(committed(out)) < 2 and time.monotonic() < deadline and first.poll() is None:
                time.sleep(0.05)
            assert first.poll() is None and 2 <= len(committed(out)) < 18, (
                first.stderr.read() if first.poll() else ""
            )
        finally:
            first.kill()  # the whole job: driver gone, its actors with it
            first.wait()
        done_before = len(read_outcomes(out)[0]) + sum(
            len(p.read_text().splitlines()) for p in (out / "shards").glob("part-*.jsonl.partial")
        )
        second = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["records"] == 36
    assert summary["new_records_this_run"] == 36 - done_before  # only what was missing was generated
    recs, _ = read_outcomes(out)
    assert [r["id"] for r in recs] == list(range(36))


class StubProcessForTest:
    """The stub as its own process (its own GIL: the driver and the stub do not slow each other)."""

    def __init__(self, latency_ms: float):
        from tpt.testing.openai_stub import StubProcess

        self.proc = StubProcess(["--latency-ms", str(latency_ms), "--words", "8"], max_seconds=300)

    def __enter__(self) -> str:
        return self.proc.__enter__().base_url

    def __exit__(self, *exc) -> None:
        self.proc.__exit__()


def test_a_worker_that_cannot_build_its_backend_is_a_clear_error(ray_cluster, tmp_path, write_corpus):
    src = write_corpus(tmp_path / "docs.jsonl", 3)
    cfg = make_cfg(src, tmp_path / "out", "http://127.0.0.1:9/v1", options={"model": None})
    with pytest.raises(
        BackendError, match="2 of 2 Ray workers could not build their backend: --backend openai needs --model"
    ):
        run_ray(cfg, RayOptions(workers=2))


def test_bad_executor_options_are_refused(tmp_path, write_corpus):
    src = write_corpus(tmp_path / "docs.jsonl", 3)
    with pytest.raises(ConfigError, match="--units-per-worker > 1 needs"):
        run_ray(
            AugmentConfig(inputs=[str(src)], output=tmp_path / "o", backend="transformers"),
            RayOptions(units_per_worker=2),
        )
    with pytest.raises(ConfigError, match="--workers must be >= 1"):
        RayOptions(workers=0)


def test_each_worker_starts_and_drives_its_own_server(ray_cluster, tmp_path, write_corpus, read_outcomes):
    """--executor ray --serve: one managed server per worker (here the stub, launched as a command)."""
    from tpt.augment.servers.engines import ServeSpec
    from tpt.augment.servers.supervised import ServedTeacher

    src = write_corpus(tmp_path / "docs.jsonl", 12)
    spec = ServeSpec(
        engine="command",
        model="teacher",
        startup_timeout_s=60,
        command=f"{sys.executable} -m tpt.testing.openai_stub --port {{port}} --model {{name}} "
        "--latency-ms 20 --words 6 --max-seconds 120",
    )
    cfg = make_cfg(src, tmp_path / "out", "", shard_size=4, options={"model": "teacher", "base_url": None})
    executor = RayExecutor(RayOptions(workers=2), teacher=ServedTeacher(spec))
    try:
        summary = stage.run(cfg, executor=executor)
    finally:
        executor.shutdown()
    assert summary.complete and summary.records == 12
    assert len({w["pid"] for w in executor.workers}) == 2
    recs, _ = read_outcomes(tmp_path / "out")
    assert {r["provenance"]["model"] for r in recs} == {"teacher"}


def test_an_unreachable_cluster_address_fails_fast(tmp_path, write_corpus):
    src = write_corpus(tmp_path / "docs.jsonl", 1)
    cfg = make_cfg(src, tmp_path / "out", "http://127.0.0.1:9/v1")
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match="cannot reach the Ray cluster at 127.0.0.1:1"):
        run_ray(cfg, RayOptions(address="127.0.0.1:1"))
    with pytest.raises(ConfigError, match="expected auto, HOST:PORT"):
        run_ray(cfg, RayOptions(address="nonsense"))
    assert time.monotonic() - t0 < 15


def test_a_thinking_budget_gives_the_same_caps_on_ray_as_locally(
    ray_cluster, stub, tmp_path, write_corpus, read_outcomes
):
    """The plan travels in the job: every worker caps a document as a local run does (augment/budget.py)."""
    from tpt.augment.budget import parse_budget

    src = write_corpus(tmp_path / "docs.jsonl", 12)
    budget = {"thinking_budget": parse_budget("8/doc", "difficulty"), "shard_size": 4}
    local = stage.run(make_cfg(src, tmp_path / "local", stub.base_url, **budget))
    dist = run_ray(make_cfg(src, tmp_path / "ray", stub.base_url, **budget), RayOptions(workers=2))
    assert read_outcomes(tmp_path / "ray") == read_outcomes(tmp_path / "local")
    assert dist.thinking_budget == local.thinking_budget and dist.thinking_budget["spent"] <= 96
    caps = [r["provenance"]["thinking_budget"]["cap"] for r in read_outcomes(tmp_path / "ray")[0]]
    assert len(set(caps)) > 1 and sum(caps) <= 96
