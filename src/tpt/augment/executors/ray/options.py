"""The `--executor ray` options of `tpt augment` (light: Ray is imported only when a run starts)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from tpt.core.errors import ConfigError

READS = ("workers", "driver")


@dataclass(frozen=True, kw_only=True, slots=True)
class RayOptions:
    address: str | None = None
    """Ray cluster address ('auto', 'ray://host:10001', 'host:6379'); None: $RAY_ADDRESS or a local cluster."""
    workers: int | None = None
    """Worker actors; None: as many as the cluster's GPUs (or CPUs) allow."""
    worker_cpus: float = 1.0
    worker_gpus: float | None = None
    """GPUs per worker; None: 1 for GPU engines (vllm, --serve vllm/sglang, --device cuda), else 0."""
    units_per_worker: int = 1
    """Units a worker runs at once (openai backend only): keeps its server busy across a unit's tail."""
    max_restarts: int = 3
    """Ray restarts of each worker actor after it dies."""
    reads: str = "workers"
    """Who reads the input and writes the shards: 'workers' (each its own units; the driver only keeps
    the books) or 'driver' (the driver streams every document to the workers and writes every outcome)."""

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.worker_cpus < 0 or (self.worker_gpus is not None and self.worker_gpus < 0):
            raise ConfigError("--worker-cpus and --worker-gpus must be >= 0")
        if self.units_per_worker < 1:
            raise ConfigError(f"--units-per-worker must be >= 1, got {self.units_per_worker}")
        if self.reads not in READS:
            raise ConfigError(f"--ray-reads must be one of {', '.join(READS)}, got {self.reads!r}")
        if self.max_restarts < 0:
            raise ConfigError(f"--worker-restarts must be >= 0, got {self.max_restarts}")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options; their defaults are RayOptions' (written once, there)."""
    d = RayOptions()
    g = p.add_argument_group("ray executor (--executor ray)")
    g.add_argument(
        "--address",
        default=d.address,
        help="ray: cluster address (auto, host:6379, ray://host:10001); default $RAY_ADDRESS, "
        "else a local cluster on this machine",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=d.workers,
        help="ray: worker actors, one backend each (default: as many as the GPUs, else CPUs, allow)",
    )
    g.add_argument(
        "--worker-cpus",
        type=float,
        default=d.worker_cpus,
        help=f"ray: CPUs per worker (default {d.worker_cpus:g})",
    )
    g.add_argument(
        "--worker-gpus",
        type=float,
        default=d.worker_gpus,
        help="ray: GPUs per worker (default 1 for vllm and --serve vllm/sglang, else 0)",
    )
    g.add_argument(
        "--units-per-worker",
        type=int,
        default=d.units_per_worker,
        help="ray, openai backend: shards a worker runs at once, to keep its server busy "
        f"through the long tail of each shard (default {d.units_per_worker})",
    )
    g.add_argument(
        "--worker-restarts",
        type=int,
        default=d.max_restarts,
        help=f"ray: restarts of a dead worker (default {d.max_restarts})",
    )

    g.add_argument(
        "--ray-reads",
        choices=READS,
        default=d.reads,
        help="ray: who reads the input and writes the shards: workers (default; the driver keeps "
        "only the books) or driver (every document passes through the driver)",
    )


def ray_options(args: argparse.Namespace) -> RayOptions:
    return RayOptions(
        address=args.address,
        workers=args.workers,
        worker_cpus=args.worker_cpus,
        worker_gpus=args.worker_gpus,
        units_per_worker=args.units_per_worker,
        max_restarts=args.worker_restarts,
        reads=getattr(args, "ray_reads", RayOptions().reads),
    )
