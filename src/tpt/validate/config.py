"""The config of `tpt validate`: what to read, which checks, where to write (validate/cli.py builds one)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tpt.core.duplicate_ids import check_policy
from tpt.core.errors import ConfigError
from tpt.quality.checks import CheckConfig
from tpt.storage import as_path
from tpt.validate.executor import EXECUTORS, RaySettings

__all__ = ["EXECUTORS", "RaySettings", "ValidateConfig"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ValidateConfig:
    """Everything `tpt validate` needs; the CLI builds one from its flags (validate/cli.py)."""

    inputs: tuple[str | Path, ...]
    """tpt augment output directories, or JSONL files/directories with 'text' and 'thinking' fields."""
    output: Path
    checks: CheckConfig = field(default_factory=CheckConfig)
    duplicate_ids: str = "keep-both"
    """Records whose id came before: keep-both (counted and listed in the summary) or keep-first
    (the later ones are rejected as duplicate_id; duplicate_ids.py)."""
    executor: str = "local"
    """local (this process, unit after unit) or ray (workers judge and commit the units; ray_units.py)."""
    ray: RaySettings = field(default_factory=RaySettings)

    def __post_init__(self) -> None:
        if isinstance(self.inputs, str | Path) or not self.inputs:
            raise ConfigError("validate needs a sequence of one or more inputs")
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "output", as_path(self.output))  # a path or a URL (s3://...)
        check_policy(self.duplicate_ids)
        if self.executor not in EXECUTORS:
            raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}")
