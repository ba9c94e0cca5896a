"""Run `tpt augment` on a Ray cluster. By default (`--ray-reads workers`, direct.py) the workers read
their own input ranges and write and commit their own shards, and the driver keeps only the books. With
`--ray-reads driver` (below, `generate`) the driver reads the corpus once and owns the output directory;
worker actors (one backend each) turn units (one shard's documents) into records.

Why Ray core actors and not Ray Data: the exactly-once contract lives in the shard book (fixed shards,
commit by rename), so the unit of work must be one shard and exactly one writer must decide what is
committed. Ray Data would re-batch rows into blocks, write through its own datasinks and resume by
in-memory row-id sets, i.e. at-least-once output. Actors also keep an expensive backend (a GPU engine,
a server) alive across thousands of units, and an explicit scheduler can resend a dead worker's unit.

Why the driver may read and write (`--ray-reads driver`): one sequential pass over the corpus (no per-shard seek, which gzip,
zstd and Parquet rows cannot do cheaply, and no O(N^2) re-reading), inputs need not be on shared
storage, and output written by one process needs no fencing against a worker Ray believes dead but
that still runs. The driver's work per document is a JSON parse and an append; the GPUs do the rest.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

from tpt.augment import stage
from tpt.augment.config import AugmentConfig
from tpt.augment.executors import Teacher
from tpt.augment.executors.ray.options import RayOptions, ray_options
from tpt.augment.executors.ray.pool import WorkerPool
from tpt.augment.executors.ray.units import group_units
from tpt.augment.generation import Document, FailFn, Job, Outcomes
from tpt.core.errors import BackendError, ConfigError, MissingDependencyError
from tpt.core.raycluster import connect

GPU_ENGINES = ("vllm", "sglang")
"""Backends and --serve engines that need a GPU per worker."""
THREAD_SAFE_BACKENDS = ("openai",)
"""Backends whose generate() may run in several threads at once (several units per worker)."""


def run(cfg: AugmentConfig, opts: RayOptions, *, teacher: Teacher | None = None) -> Any:
    """`stage.run` with generation spread over Ray workers; returns the same summary."""
    executor = RayExecutor(opts, teacher=teacher)
    return executor.run_stage(cfg, executor=executor)


def from_args(args: Any, teacher: Teacher | None) -> RayExecutor:
    """`--executor ray` (tpt.augment.executors.EXECUTORS): the Ray executor of the parsed options."""
    return RayExecutor(ray_options(args), teacher=teacher)


def _connect(ray: Any, opts: RayOptions) -> bool:
    """Join the cluster (or start a local one on 127.0.0.1); True when this call connected."""
    return connect(ray, opts.address, stage="augment")


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail in seconds, not minutes (Ray retries an unreachable GCS for a long time), on a bad host:port."""
    import socket

    if not address or address == "auto" or address.startswith("local"):
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address!r}: expected auto, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise ConfigError(
            f"cannot reach the Ray cluster at {address} ({exc}); is `ray start --head` running "
            "there, and is this the address it printed?"
        ) from None


class RayExecutor:
    """An executor of tpt.augment.stage.run: the workers of one run, each with its own backend built by
    `teacher` (default: the config's backend; `ServedTeacher`: a server per worker)."""

    def __init__(self, opts: RayOptions, *, teacher: Teacher | None = None):
        self.opts = opts
        self.teacher = teacher
        self.actors: list[Any] = []
        self.workers: list[dict[str, Any]] = []
        """ready() of each worker: pid, host (for logs, and for tests that kill one)."""
        self.pool: WorkerPool | None = None
        self._started_ray = False

    def run_stage(self, cfg: AugmentConfig, *, executor: Any = None) -> Any:
        """The whole run (what `tpt augment` calls in place of stage.run): with `--ray-reads workers`
        the workers read and commit their own shards (direct.py), else stage.run through generate()."""
        if self.opts.reads == "driver":
            return stage.run(cfg, executor=self)
        from tpt.augment.executors.ray.direct import run_direct

        return run_direct(cfg, self)

    def connect(self, job: Job) -> None:
        """Join (or start) the cluster and start the workers, each with its backend."""
        if self.opts.units_per_worker > 1 and job.cfg.backend not in THREAD_SAFE_BACKENDS:
            raise ConfigError(
                f"--units-per-worker > 1 needs a backend that runs requests concurrently "
                f"({', '.join(THREAD_SAFE_BACKENDS)}); {job.cfg.backend!r} runs one unit at a time"
            )
        try:
            import ray
        except ImportError:
            raise MissingDependencyError("ray", "--executor ray", extra="ray") from None
        _check_reachable(self.opts.address)
        self._started_ray = _connect(ray, self.opts)
        self._start_workers(job)

    def generate(self, job: Job, docs: Iterator[Document], fail: FailFn) -> Outcomes:
        """Units out to the workers, records back in completion order, failures through `fail`."""
        self.connect(job)
        assert self.pool is not None
        for unit, outcomes in self.pool.map_unordered(group_units(docs, job.cfg.shard_size)):
            by_index = {d.item.index: d for d in unit.docs}
            for outcome in outcomes:
                doc = by_index[outcome[1]]
                if outcome[0] == "record":
                    yield doc, outcome[2]
                else:
                    fail(doc.item, outcome[2], outcome[3], outcome[4])

    def report(self) -> dict[str, Any]:
        """summary.json's `ray` (and one line on stderr) when workers died: what was lost and redone."""
        losses = self.losses() if self.pool is not None else {}
        if not losses.get("workers_lost"):
            return {}
        report_losses(losses)
        return {"ray": losses}

    def close(self) -> None:
        try:
            self.shutdown()
        finally:
            if self._started_ray:
                import ray

                ray.shutdown()
                self._started_ray = False

    def _start_workers(self, job: Job) -> None:
        import ray

        from tpt.augment.executors.ray.worker import AugmentWorker

        gpus = self.opts.worker_gpus
        if gpus is None:
            engine = getattr(self.teacher, "engine", job.cfg.backend)
            on_gpu = engine in GPU_ENGINES or job.cfg.backend_options.get("device") == "cuda"
            gpus = 1.0 if on_gpu else 0.0
        n = self.opts.workers or _fitting_workers(ray.cluster_resources(), self.opts.worker_cpus, gpus)
        actor_cls = ray.remote(AugmentWorker).options(
            num_cpus=self.opts.worker_cpus,
            num_gpus=gpus,
            max_restarts=self.opts.max_restarts,
            max_task_retries=0,  # the pool resends a dead worker's unit itself (and counts it)
            max_concurrency=self.opts.units_per_worker + 2,  # units + the one waiting + ready()
        )
        # The job carries the loaded template: a template file need not be on the workers.
        self.actors = [
            actor_cls.remote(job, self.teacher, units_at_once=self.opts.units_per_worker) for _ in range(n)
        ]
        self.workers = ray.get([a.ready.remote() for a in self.actors])
        errors = {w["error"] for w in self.workers if w["error"]}
        if errors:
            raise BackendError(
                f"{len([w for w in self.workers if w['error']])} of {n} Ray workers could not "
                f"build their backend: {'; '.join(sorted(errors))}"
            )
        hosts = sorted({w["host"] for w in self.workers})
        nodes = {w.get("node") for w in self.workers}
        print(
            f"augment: {n} Ray workers ({self.opts.worker_cpus:g} CPU, {gpus:g} GPU each) on "
            f"{len(nodes)} node(s) of {len(hosts)} host(s): {', '.join(hosts[:8])}",
            file=sys.stderr,
        )
        self.pool = WorkerPool(self.actors, units_per_worker=self.opts.units_per_worker)

    def losses(self) -> dict[str, Any]:
        """What the run lost and redid: workers that died and the nodes they ran on (`nodes_gone`: those
        Ray already reports dead; it notices a lost node within its health-check timeout), the units
        they held that other workers did again, and how many of the dead came back."""
        import ray

        pool = self.pool
        assert pool is not None
        alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
        dead = sorted(pool.dead_workers)
        nodes = sorted({self.workers[i]["node"] for i in dead if self.workers[i].get("node")})
        return {
            "workers": len(self.workers),
            "workers_lost": len(dead),
            "lost_on_nodes": nodes,
            "nodes_gone": [n for n in nodes if n not in alive],
            "units_redone": pool.units_resent,
            "documents_redone": pool.documents_resent,
            "workers_back": len([i for i in dead if i in pool.alive_workers()]),
        }

    def shutdown(self) -> None:
        """Close the backends (and their servers) politely, then make sure every actor is gone."""
        if not self.actors:
            return
        import ray

        try:
            ray.wait([a.close.remote() for a in self.actors], num_returns=len(self.actors), timeout=60)
        finally:
            for a in self.actors:
                ray.kill(a)
            self.actors = []


def report_losses(losses: dict[str, Any]) -> None:
    """One line on stderr when workers died: what was lost and what was redone."""
    if not losses.get("workers_lost"):
        return
    nodes = losses["lost_on_nodes"]
    where = f" on node(s) {', '.join(n[:12] for n in nodes)}" if nodes else ""
    gone = f" ({len(losses['nodes_gone'])} node(s) gone)" if losses["nodes_gone"] else ""
    print(
        f"augment: lost {losses['workers_lost']} of {losses['workers']} Ray workers{where}{gone}; the "
        f"{losses['units_redone']} unit(s) they held ({losses['documents_redone']} documents) were redone by "
        f"the other workers, each document written once; {losses['workers_back']} worker(s) came back",
        file=sys.stderr,
    )


def _fitting_workers(resources: dict[str, float], cpus: float, gpus: float) -> int:
    """How many workers of (cpus, gpus) the cluster holds: bounded by GPUs when workers need them."""
    if gpus > 0:
        n = int(resources.get("GPU", 0) // gpus)
        if n < 1:
            raise ConfigError(
                f"the Ray cluster has {resources.get('GPU', 0):g} GPUs; each worker needs {gpus:g} "
                "(--worker-gpus). Use a GPU cluster, or --worker-gpus 0 for a CPU backend"
            )
        return n
    n = int(resources.get("CPU", 0) // cpus) if cpus > 0 else 1
    if n < 1:
        raise ConfigError(f"the Ray cluster has {resources.get('CPU', 0):g} CPUs; each worker needs {cpus:g}")
    return n
