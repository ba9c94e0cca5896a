"""`tpt pack --executor ray`: the checks and the tokenization (workers.Preparer) on Ray workers.

Only where WorkerPool's jobs run changes: `workers` Ray actors (default: one per CPU of the cluster),
each holding one Preparer, take the jobs in turn, `2 * workers` jobs ahead, and the results come back
in input order. The driver plans, packs, shuffles, writes and commits exactly as with --executor local
(stage.py, commits.py), and a job's result does not depend on the process that made it, so the output
directory is byte-identical to a local run with the same options (tested), and a run started with one
executor resumes with the other. The driver reads the input and ships each batch's texts to a worker:
the packing order (the shuffle, the rows) is one sequence, made in one place.

The cluster is the one this process is already connected to (`ray.init` done by the caller), else
`--address` or `$RAY_ADDRESS`. pack does not start a cluster of its own (the loopback-only start lives
with augment's Ray executor, which a stage may not import): start one on 127.0.0.1 with
`ray start --head --node-ip-address 127.0.0.1` and pass its address.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator
from typing import Any

from tpt.core.errors import ConfigError, TptError
from tpt.pack.workers import Job, Prepared, Preparer


class _PrepareActor:
    """One Ray worker: a Preparer, used for every job sent to it."""

    def __init__(self, preparer: Preparer) -> None:
        # One actor per CPU already: the tokenizer's own thread pool would only oversubscribe.
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        os.environ["RAYON_NUM_THREADS"] = "1"
        self.preparer = preparer

    def prepare(self, job: Job) -> Prepared:
        return self.preparer(job)


def connect(ray: Any, address: str | None) -> bool:
    """Use the connected cluster, or join the one at `address` / $RAY_ADDRESS; True when this call
    joined it (and so leaves it at the end)."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is None:
        raise ConfigError(
            "tpt pack --executor ray joins a running Ray cluster: start one with `ray start --head "
            "--node-ip-address 127.0.0.1` and pass --address 127.0.0.1:6379 (or set RAY_ADDRESS)"
        )
    try:
        ray.init(address=address, include_dashboard=False, logging_level="warning", log_to_driver=True)
    except (ConnectionError, ValueError) as exc:
        raise ConfigError(f"cannot join the Ray cluster at {address!r} ({exc})") from None
    return True


class RayPool:
    """WorkerPool's interface (submit, drain, close) over Ray actors."""

    def __init__(self, preparer: Preparer, workers: int | None, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("--executor ray needs the ray package (pip install 'ray[default]')") from None
        self._ray = ray
        self._joined = connect(ray, address)
        cpus = float(ray.cluster_resources().get("CPU", 1.0))
        n = workers if workers else max(1, int(cpus))
        actor = ray.remote(num_cpus=min(1.0, cpus / n))(_PrepareActor)
        shared = ray.put(preparer)
        self._actors = [actor.remote(shared) for _ in range(n)]
        self._pending: deque[tuple[Any, Job]] = deque()
        self._depth = 2 * n
        self._sent = 0

    def submit(self, job: Job) -> Iterator[tuple[Job, Prepared]]:
        """Queue a job; yield the jobs that are done beyond the allowed depth, in order."""
        actor = self._actors[self._sent % len(self._actors)]
        self._sent += 1
        self._pending.append((actor.prepare.remote(job), job))
        while len(self._pending) > self._depth:
            yield self._next()

    def drain(self) -> Iterator[tuple[Job, Prepared]]:
        while self._pending:
            yield self._next()

    def _next(self) -> tuple[Job, Prepared]:
        ref, job = self._pending.popleft()
        try:
            return job, self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:
            raise TptError(
                f"a tpt pack Ray worker failed ({type(exc).__name__}); re-run the same command: the run "
                "resumes from its last commit"
            ) from None

    def close(self) -> None:
        self._pending.clear()  # killing the actors ends their jobs
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []
        if self._joined:
            self._ray.shutdown()

    def __enter__(self) -> RayPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
