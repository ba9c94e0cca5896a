"""The config of `tpt estimate`: the augment run to estimate, the sample, and what to project.

Checked when it is made; `estimate/cli.py` takes its option defaults from these fields."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tpt.core.errors import ConfigError

if TYPE_CHECKING:
    from tpt.augment.config import AugmentConfig


@dataclass(frozen=True, kw_only=True, slots=True)
class EstimateConfig:
    """The augment run to estimate, the sample, and what to project."""

    augment: AugmentConfig
    """The AugmentConfig the whole corpus would run with: its inputs are the corpus the sample is drawn
    from, and the sample runs with its teacher, prompt and decoding. Its output is not used (the sample
    goes to `output`) and it must have no limit (`sample` sizes the run)."""
    output: Path | None = None
    """Keep the sample (sample.jsonl), its augmented output (augmented/) and estimate.json in this new
    directory; None: a temporary directory, removed after."""
    sample: int = 64
    """Documents to augment."""
    sample_seed: int = 0
    """Which random sample."""
    gpu_throughput: float | None = None
    """Generated tokens/s one GPU sustains with your engine and teacher: projects GPU-hours."""
    gpus: int | None = None
    """With gpu_throughput: wall-clock days on this many GPUs."""
    target_training_tokens: float | None = None
    """E.g. 100e9: how many augmented documents that takes, and whether the corpus has them."""

    def __post_init__(self) -> None:
        if self.augment.limit is not None:
            raise ConfigError("tpt estimate draws its own sample: use --sample N, not --limit")
        if self.sample < 1:
            raise ConfigError(f"--sample must be >= 1, got {self.sample}")
        if self.output is not None:
            object.__setattr__(self, "output", Path(self.output))
