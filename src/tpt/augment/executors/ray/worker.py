"""The Ray actor that holds one backend (an engine on its GPU, or a client of its own server) and turns
units into outcomes. A unit of documents (the driver reads, `--ray-reads driver`) gives outcomes back and
writes nothing; a unit that names input ranges (the default) is read, written and committed here
(direct.py), and only counts go back."""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

from tpt.augment.backends.base import Backend
from tpt.augment.executors import Teacher, registry_teacher
from tpt.augment.executors.ray.units import Outcome
from tpt.augment.generation import Document, Job
from tpt.core.errors import BackendError, TptError


class AugmentWorker:
    """Made a Ray actor by executors/ray/executor.py (threaded: a `ready` call is answered while a unit runs)."""

    def __init__(self, job: Job, teacher: Teacher | None = None, *, units_at_once: int = 1) -> None:
        self.job = job
        self.error: str | None = None
        self.backend: Backend | None = None
        # Units beyond `units_at_once` wait here, inside the actor, so the next one starts without a
        # round trip to the driver.
        self._slots = threading.BoundedSemaphore(units_at_once)
        # The first unit runs alone: a backend may set itself up lazily on its first generate().
        self._warm = threading.Event()
        self._warm_lock = threading.Lock()
        try:  # one backend for the actor's life, closed by close()
            self.backend = (teacher or registry_teacher)(job.cfg)
        except TptError as exc:  # reported by ready(); the driver turns it into a clear error
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure to build must reach the driver as text
            self.error = f"{type(exc).__name__}: {exc}"

    def ready(self) -> dict[str, Any]:
        """Where this worker runs (pid, host, Ray node id), and why its backend could not be built
        (None when it could)."""
        import ray

        node = ray.get_runtime_context().get_node_id()
        return {"pid": os.getpid(), "host": socket.gethostname(), "node": node, "error": self.error}

    def run_unit(self, shard: int, docs: list[Document]) -> list[Outcome]:
        """Outcomes of one unit: a record or a failure for each document, in completion order."""
        if self.backend is None:
            raise BackendError(f"worker backend could not be built: {self.error}")
        with self._slots:
            if self._warm.is_set():
                return self._run(docs)
            with self._warm_lock:
                outcomes = self._run(docs)
                self._warm.set()
                return outcomes

    def index_file(self, file: str, stride: int) -> tuple[int, list]:
        """An input file's item count and byte offsets (ranges.index_file), for the driver's units."""
        from tpt.augment.executors.ray.ranges import index_file

        return index_file(file, stride)

    def run_range(self, shard: int, payload: tuple[list, int]) -> dict[str, Any]:
        """A unit that names its input: read it, generate, write and commit shard `shard` here
        (direct.run_range); only counts go back to the driver."""
        from tpt.augment.executors.ray.direct import run_range

        if self.backend is None:
            raise BackendError(f"worker backend could not be built: {self.error}")
        segments, items = payload
        with self._slots:
            if self._warm.is_set():
                return run_range(self.job, self.backend, shard, segments, items)
            with self._warm_lock:
                out = run_range(self.job, self.backend, shard, segments, items)
                self._warm.set()
                return out

    def _run(self, docs: list[Document]) -> list[Outcome]:
        assert self.backend is not None
        outcomes: list[Outcome] = []

        def fail(item: Any, reason: str, detail: str, doc_id: Any = None) -> None:
            outcomes.append(("failure", item.index, reason, detail, doc_id))

        for doc, record in self.job.records(self.backend, iter(docs), fail):
            outcomes.append(("record", doc.item.index, record))
        answered = {o[1] for o in outcomes}
        for doc in docs:  # a backend must answer every request; if not, say so instead of hanging a shard
            if doc.item.index not in answered:
                fail(doc.item, "generation_failed", "the backend returned no result for this request", doc.id)
        return outcomes

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()
            self.backend = None
