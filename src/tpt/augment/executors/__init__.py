"""Where `tpt augment` generates: one small interface, and a lazy registry of executors by import string.

An executor turns the documents still to do into (document, record) pairs; the stage around it reads the
corpus, owns the output directory and writes each outcome exactly once (stage.py, shards.py). A teacher
is how an executor builds its backend: `registry_teacher` (a backend of backends/base.py's registry, the
default), or a managed server's client (`tpt.augment.servers.supervised.ServedTeacher`, `--serve`).

    executor.generate(job, docs, fail)  # (document, record) pairs, in completion order
    executor.report()                   # what summary.json adds for this executor ({} locally)
    executor.close()                    # release what generate started (workers, a cluster)

The other executors and teachers are augment's wings, above it (Ray in `tpt.augment.executors.ray`,
managed servers in `tpt.augment.servers`): named here by import string and imported only when chosen;
they import augment, never the reverse.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from tpt.augment.backends.base import Backend, build_backend
from tpt.augment.config import AugmentConfig
from tpt.augment.generation import Document, FailFn, Job, Outcomes
from tpt.core.errors import ConfigError
from tpt.core.jsontypes import JSONObject

Teacher = Callable[[AugmentConfig], Backend]
"""Builds the backend of a run (picklable: a Ray worker builds its own). A teacher may say which engine
runs the model (`engine`, e.g. 'vllm' for a managed vLLM server; default: the config's backend)."""


def registry_teacher(cfg: AugmentConfig) -> Backend:
    """The default teacher: the backend named by the config, from backends/base.py's registry."""
    return build_backend(cfg.backend, cfg.backend_options)


class Executor(Protocol):
    def generate(self, job: Job, docs: Iterator[Document], fail: FailFn) -> Outcomes:
        """(document, record) for the documents it could generate; the others go to `fail`."""
        ...

    def report(self) -> JSONObject:
        """Keys this executor adds to summary.json (e.g. the Ray workers lost); {} when none."""
        ...

    # Optional: `notices() -> dict[str, str]`, what the backends said about the teacher (a server that
    # ignores streaming): summary.json's `notices`.

    def close(self) -> None: ...


class LocalExecutor:
    """One backend in this process: build it, generate, close it. The default executor."""

    def __init__(self, teacher: Teacher | None = None) -> None:
        self.teacher = teacher or registry_teacher
        self._notices: dict[str, str] = {}

    def generate(self, job: Job, docs: Iterator[Document], fail: FailFn) -> Outcomes:
        backend = self.teacher(job.cfg)
        try:
            yield from job.records(backend, docs, fail)
        finally:
            self._notices = dict(getattr(backend, "notices", {}))
            backend.close()

    def report(self) -> JSONObject:
        return {}

    def notices(self) -> dict[str, str]:
        return dict(self._notices)

    def close(self) -> None:
        pass


def local_from_args(args: Any, teacher: Teacher | None) -> LocalExecutor:
    return LocalExecutor(teacher)


# name -> "module:factory"; factory(args, teacher) -> Executor, from the parsed CLI options.
EXECUTORS: dict[str, str] = {
    "local": "tpt.augment.executors:local_from_args",
    "ray": "tpt.augment.executors.ray.executor:from_args",
}
OPTION_MODULES = ("tpt.augment.executors.ray.options", "tpt.augment.servers.options")
"""Modules that add their options to `tpt augment` (add_arguments(parser); light: no engine, no Ray)."""
SERVED_TEACHER = "tpt.augment.servers.options:teacher_from_args"
"""teacher_from_args(args): the `--serve` teacher (a managed server per process), or None."""


def load(entry: str) -> Any:
    """The object an import string ('package.module:name') names, imported now."""
    module_name, _, attr = entry.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attr) if attr else module


def executor_from_args(args: Any, teacher: Teacher | None) -> Executor:
    if args.executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {args.executor!r}; choose one of {', '.join(EXECUTORS)}")
    return load(EXECUTORS[args.executor])(args, teacher)
