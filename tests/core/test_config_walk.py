"""The walk of the config object through `tpt.augment.stage.run` (issue 24, storage untangled).

A tiny real local augment run (the local executor, a local output, a stub teacher: augment's own code
runs whole, only the model is replaced) under `sys.setprofile`. A step of the walk is a call from one of
tpt's modules into another that hands over the run's AugmentConfig: an argument is the config, holds it
as an attribute (a `Job`, an executor), or is one of its structured fields (the output path, the inputs,
the sampling, the backend options, the thinking budget): following `cfg` is following these too. A
generator resumed is no new call, and a call inside one module, or into the module of the step just
before, is no step (the reader stays in that file). The figures: the distinct modules the walk visits,
and its climbs, the steps into a module it had already visited (a callback, or a module that hands the
config down and gets it back up).

`frames` is the coarser view: every module whose frames receive the config, in order, repeats in a row
merged (a return to the caller followed by another call from it counts there as a climb).

Print both: `PYTHONPATH=src python tests/core/test_config_walk.py [--remote]` (`--remote`: also with the
output on a local S3 server).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import pytest

from tpt.augment.backends.base import GenerationResult, SamplingParams
from tpt.augment.config import AugmentConfig
from tpt.augment.executors import LocalExecutor

MAX_MODULES = 10
MAX_CLIMBS = 4


class StubTeacher:
    """Thinks aloud by repeating the document; counts words as tokens."""

    name, model_id = "stub", "stub-teacher"

    def truncate(self, texts, max_tokens):  # noqa: ANN001, ANN201 - the Backend protocol's
        return [(t, len(t.split()), False) for t in texts]

    def generate(self, requests, sampling):  # noqa: ANN001, ANN201
        for req in requests:
            doc = req.meta["text"]
            yield GenerationResult(
                key=req.key, text=f"<think>\nso {doc}\n</think>\nanswer", prompt_tokens=3, completion_tokens=4
            )

    def close(self) -> None:
        pass


def config_walk(tmp: Path, output: object = None) -> tuple[list[str], list[str]]:
    """(the walk's steps, the frames' modules) of one small augment run, in order."""
    from tpt.augment import stage

    tmp.mkdir(parents=True, exist_ok=True)
    docs = tmp / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": i, "text": f"doc {i} " + "w " * i}) + "\n" for i in range(6)))
    cfg = AugmentConfig(
        inputs=[str(docs)],
        output=output if output is not None else tmp / "aug",
        backend="stub",
        sampling=SamplingParams(max_tokens=32, seed=1),
        shard_size=4,
        progress=False,
    )
    parts = [cfg, *(v for v in vars(cfg).values() if not isinstance(v, str | int | float | bool | None))]

    def carries(value: object) -> bool:
        if any(value is p for p in parts):
            return True
        attrs = getattr(value, "__dict__", None)
        return isinstance(attrs, dict) and any(v is cfg for v in attrs.values())

    steps: list[str] = []
    frames: list[str] = []
    entered: set[int] = set()  # frames seen: a generator resumed is not a new call
    kept: list[object] = []  # ... and kept alive, so that a frame's id is not reused

    def profile(frame, event, arg):  # noqa: ANN001 - sys.setprofile's signature
        if event != "call" or id(frame) in entered:
            return
        entered.add(id(frame))
        kept.append(frame)
        module = frame.f_globals.get("__name__", "?")
        if not module.startswith("tpt.") or not any(carries(v) for v in frame.f_locals.values()):
            return
        if not frames or frames[-1] != module:
            frames.append(module)
        caller = frame.f_back.f_globals.get("__name__", "?") if frame.f_back else "?"
        if caller != module and (not steps or steps[-1] != module):
            steps.append(module)

    sys.setprofile(profile)
    try:
        summary = stage.run(cfg, executor=LocalExecutor(lambda _cfg: StubTeacher()))
    finally:
        sys.setprofile(None)
    assert summary.records == 6, summary  # the run did the work, so the walk is the real one
    return steps, frames


def figures(walk: list[str]) -> tuple[int, int]:
    """(distinct modules, climbs back to a module already visited)."""
    seen: set[str] = set()
    climbs = 0
    for module in walk:
        climbs += module in seen
        seen.add(module)
    return len(seen), climbs


def test_the_config_walks_through_few_modules_and_rarely_climbs_back(tmp_path):
    steps, _ = config_walk(tmp_path)
    modules, climbs = figures(steps)
    where = " -> ".join(steps)
    assert modules <= MAX_MODULES, f"{modules} modules (at most {MAX_MODULES}): {where}"
    assert climbs <= MAX_CLIMBS, f"{climbs} climbs back (at most {MAX_CLIMBS}): {where}"


def remote_walk(tmp: Path) -> tuple[list[str], list[str]]:
    """The same run with its output on object storage: a local S3 server (moto, on 127.0.0.1)."""
    import os

    import s3fs

    from tpt.storage import as_path
    from tpt.testing.s3_server import S3ServerProcess

    env = {
        "AWS_ACCESS_KEY_ID": "walk",
        "AWS_SECRET_ACCESS_KEY": "walk-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in [*env, "AWS_ENDPOINT_URL", "TPT_STAGING_DIR"]}
    with S3ServerProcess() as server:
        os.environ.update(env, AWS_ENDPOINT_URL=server.endpoint, TPT_STAGING_DIR=str(tmp / "staging"))
        try:
            s3fs.S3FileSystem(
                endpoint_url=server.endpoint,
                key=env["AWS_ACCESS_KEY_ID"],
                secret=env["AWS_SECRET_ACCESS_KEY"],
            ).mkdir("walk")
            return config_walk(tmp, as_path("s3://walk/aug"))
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


REMOTE_MAX_MODULES = 13
REMOTE_MAX_CLIMBS = 8
"""Not yet the target: on object storage the output path is a RemotePath, whose own methods (`/`,
`exists`, ...) are steps into storage/remote.py from each module that uses the path. A ceiling that may
only go down."""


def test_on_object_storage_the_walk_does_not_grow(tmp_path):
    pytest.importorskip("moto")
    steps, _ = remote_walk(tmp_path)
    modules, climbs = figures(steps)
    where = " -> ".join(steps)
    assert modules <= REMOTE_MAX_MODULES, f"{modules} modules (at most {REMOTE_MAX_MODULES}): {where}"
    assert climbs <= REMOTE_MAX_CLIMBS, f"{climbs} climbs back (at most {REMOTE_MAX_CLIMBS}): {where}"


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        runs = [("local", *config_walk(Path(d) / "local"))]
        if "--remote" in sys.argv:
            runs.append(("s3", *remote_walk(Path(d) / "s3")))
    for where, walk, seen in runs:
        for label, w in (("walk", walk), ("frames", seen)):
            m, c = figures(w)
            print(f"{where} {label}: {m} modules, {c} climbs back: {' -> '.join(w)}")
