"""Where `tpt validate` judges its units: `--executor local|ray` and the Ray flags (light: the parser reads
these defaults without loading the checks)."""

from __future__ import annotations

from dataclasses import dataclass

from tpt.core.errors import ConfigError

EXECUTORS = ("local", "ray")


@dataclass(frozen=True, kw_only=True, slots=True)
class RaySettings:
    """`--executor ray`: which cluster and how many workers (the flags augment's Ray executor has)."""

    address: str | None = None
    """'auto', 'host:6379', 'ray://host:10001'; None: $RAY_ADDRESS, else a local cluster on 127.0.0.1."""
    workers: int | None = None
    """Units judged at once; None: as many as the cluster's CPUs allow."""
    worker_cpus: float = 1.0

    def __post_init__(self) -> None:
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"--workers must be >= 1, got {self.workers}")
        if self.worker_cpus <= 0:
            raise ConfigError(f"--worker-cpus must be > 0, got {self.worker_cpus}")
