"""The config of `tpt inspect`: which directories, where the report goes, and how much it samples.

The defaults are written here once; `inspect/cli.py` takes its option defaults from these fields."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tpt.core.errors import ConfigError


@dataclass(frozen=True, kw_only=True, slots=True)
class InspectConfig:
    dirs: tuple[str | Path, ...]
    """tpt augment, validate or pack output directories (local, or URLs on object storage)."""
    output: str | Path
    """The HTML file to write (a local path or a URL)."""
    per_group: int = 12
    """Sampled records per (source, check result) in the browser: a seeded reservoir of each."""
    seed: int = 0
    """Which sample."""
    max_chars: int = 20000
    """Characters of a document, and of a thinking, the report holds (the rest is counted, not shown)."""
    scatter_points: int = 2000
    """Points of the thinking-length-against-reasoning-intensity plot (a uniform reservoir)."""
    title: str = "tpt inspect"

    def __post_init__(self) -> None:
        if isinstance(self.dirs, str | Path) or not self.dirs:
            raise ConfigError("inspect needs a sequence of one or more directories")
        object.__setattr__(self, "dirs", tuple(self.dirs))
        for name in ("per_group", "max_chars", "scatter_points"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
