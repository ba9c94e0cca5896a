"""`tpt validate --executor ray` on a real loopback Ray cluster: byte for byte what a local run writes (ids
repeated across input files included, under both --duplicate-ids policies), and the same after a worker
is SIGKILLed mid-unit (a lost node: test_ray_node_loss.py)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from tests.augment.executors_ray.conftest import ray_cluster  # noqa: F401 (the augment tests' cluster)
from tests.validate.conftest import DOCUMENT, THINKING
from tpt.validate.config import RaySettings
from tpt.validate.stage import ValidateConfig, run


def corpus(root: Path, files: int = 4, per_file: int = 60) -> Path:
    root.mkdir()
    for f in range(files):
        with (root / f"part-{f:08d}.jsonl").open("w") as out:
            for i in range(per_file):
                thinking = THINKING if i % 7 else "Too short."
                doc_id = i if i % 5 == 0 else f"{f}-{i}"  # ids 0, 5, ... repeat across files
                rec = {"id": doc_id, "text": DOCUMENT, "thinking": thinking, "finish_reason": "stop"}
                out.write(json.dumps(rec) + ("\n" if i != 3 else "\n{broken\n"))
    return root


def validate(src: Path, out: Path, executor: str, policy: str = "keep-both", workers: int = 2) -> dict:
    cfg = ValidateConfig(
        inputs=(src,), output=out, duplicate_ids=policy, executor=executor, ray=RaySettings(workers=workers)
    )
    return run(cfg).to_json()


def same_output(a: Path, b: Path) -> None:
    for name in ("kept.jsonl", "rejected.jsonl"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    left, right = (json.loads((d / "summary.json").read_text()) for d in (a, b))
    for s in (left, right):
        s.pop("wall_seconds")
        s.pop("output", None)
    assert left == right
    assert not (a / "parts").exists()


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["keep-both", "keep-first"])
def test_ray_writes_what_local_writes(ray_cluster, tmp_path, policy):  # noqa: F811
    src = corpus(tmp_path / "records")
    local = validate(src, tmp_path / "local", "local", policy)
    assert local["duplicate_ids"]["count"] == 3 * 12  # the shared ids, in the three later files
    validate(src, tmp_path / "ray", "ray", policy)
    same_output(tmp_path / "ray", tmp_path / "local")


@pytest.mark.slow
def test_workers_merge_and_units_go_in_batches(ray_cluster, tmp_path, monkeypatch):  # noqa: F811
    """The merge runs on a worker (the driver moves no record bytes: here it cannot merge at all), and
    units batched two to a task give the same bytes."""
    from tpt.validate import ray_units
    from tpt.validate.units import UnitBook

    src = corpus(tmp_path / "records")
    validate(src, tmp_path / "local", "local")

    def refuse(*_args, **_kw):
        raise AssertionError("the driver merged the parts")

    monkeypatch.setattr(UnitBook, "merge", refuse)
    monkeypatch.setattr(ray_units, "BATCHES_PER_WORKER", 1)  # 4 units, 2 workers: 2 units per task
    batches = _count_batches(monkeypatch, ray_units)
    validate(src, tmp_path / "ray", "ray")
    same_output(tmp_path / "ray", tmp_path / "local")
    assert batches == [2, 2, 2, 2]  # index and judge passes, two tasks of two units each


def _count_batches(monkeypatch, ray_units) -> list[int]:
    """The number of units in each batch task the driver submits."""
    batches: list[int] = []
    real_enter = ray_units.RaySession.__enter__

    def enter(self):
        session = real_enter(self)
        real_remote = session.remote

        def remote(fn):
            task = real_remote(fn)

            class Spy:
                def remote(self, *args):
                    if fn is ray_units._units_task:
                        batches.append(len(args[1]))
                    return task.remote(*args)

            return Spy()

        session.remote = remote
        return session

    monkeypatch.setattr(ray_units.RaySession, "__enter__", enter)
    return batches


def kill_when_staged(parts: Path, kill, stop: threading.Event) -> list[str]:
    """Call kill(pid) once, when a worker is judging a unit after the first (its staged kept file)."""
    done: list[str] = []

    def watch() -> None:
        while not stop.is_set() and not done:
            for p in parts.glob(".0000[1-9].kept.jsonl.*.tmp") if parts.exists() else []:
                pid = int(p.name.split(".")[-2].rsplit("-", 1)[1])
                kill(pid)
                done.append(p.name)
                break
            time.sleep(0.005)

    threading.Thread(target=watch, daemon=True).start()
    return done


@pytest.mark.slow
def test_a_worker_killed_mid_unit_changes_nothing(ray_cluster, tmp_path):  # noqa: F811
    src = corpus(tmp_path / "records", files=5, per_file=1500)
    validate(src, tmp_path / "local", "local", "keep-first")
    stop = threading.Event()
    killed = kill_when_staged(tmp_path / "ray" / "parts", lambda pid: os.kill(pid, signal.SIGKILL), stop)
    validate(src, tmp_path / "ray", "ray", "keep-first")
    stop.set()
    assert killed, "a worker must be killed while it judges a unit"
    same_output(tmp_path / "ray", tmp_path / "local")
