"""The settings of `tpt compare`: which evaluated runs form which arm, the baseline, the statistics."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tpt.core.errors import ConfigError

ARM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True, kw_only=True, slots=True)
class CompareConfig:
    """Arms of evaluated training runs, compared against one of them."""

    arms: tuple[tuple[str, tuple[str, ...]], ...]
    """(name, members) per arm, in order; a member is a `tpt eval` results file (every model in it is one
    run) or a `tpt train` run directory scored by `tpt eval` (docs/compare.md says where its rows are found)."""
    baseline: str
    """The arm every other arm is compared against."""
    output: Path
    """Directory for compare.json, compare.md and the plots (created; earlier files in it are replaced)."""
    results: tuple[Path, ...] = ()
    """More results files to look up run directories' rows in."""
    tasks: tuple[str, ...] = ()
    """Tasks to compare (each must be in every run); empty: every task all runs have."""
    metric: str | None = None
    """The per-item metric; None: each task's primary metric (its first)."""
    confidence: float = 0.95
    bootstrap: int = 2000
    """Item-bootstrap replicates of the factor's interval."""
    seed: int = 0
    """Seed of the item bootstrap."""
    ignore_settings: tuple[str, ...] = ()
    """Eval settings (row config keys, e.g. batch_size or task.data) allowed to differ between runs."""
    levels: Path | None = None
    """A JSONL file giving each test item's stratum: records with `id` (else the 1-based line number, as
    `tpt eval` numbers items without an id field) and `level_field`; the item bootstrap and the item
    variances are then stratified by it. None: one stratum."""
    level_field: str = "level"
    plots: bool = True
    """Write the PNG plots (needs matplotlib)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "output", Path(self.output))
        object.__setattr__(self, "results", tuple(Path(p) for p in self.results))
        if self.levels is not None:
            object.__setattr__(self, "levels", Path(self.levels))
        if not self.arms:
            raise ConfigError("no arm given: pass --arm NAME=EVAL[,EVAL] at least twice")
        names = [name for name, _ in self.arms]
        for name, members in self.arms:
            if not ARM_NAME.match(name):
                raise ConfigError(
                    f"arm name {name!r}: use letters, digits and _ . + - (starting with a letter or digit)"
                )
            if not members:
                raise ConfigError(f"arm {name}: no run given (--arm {name}=EVAL[,EVAL])")
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise ConfigError(f"arm {dup} is given twice; list all its runs in one --arm {dup}=A,B")
        if len(names) < 2:
            raise ConfigError("tpt compare needs at least two arms (a baseline and one to compare with it)")
        if self.baseline not in names:
            raise ConfigError(f"--baseline {self.baseline!r} is not one of the arms ({', '.join(names)})")
        if not 0.5 <= self.confidence < 1:
            raise ConfigError(f"--confidence must be in [0.5, 1), got {self.confidence}")
        if self.bootstrap < 100:
            raise ConfigError(f"--bootstrap must be >= 100 replicates, got {self.bootstrap}")


def parse_arm(text: str) -> tuple[str, tuple[str, ...]]:
    """'tpt=a.jsonl,b.jsonl' -> ("tpt", ("a.jsonl", "b.jsonl"))."""
    name, sep, members = text.partition("=")
    if not sep or not name.strip():
        raise ConfigError(
            f"--arm {text!r}: write NAME=EVAL[,EVAL] (EVAL: a tpt eval results file or a run directory)"
        )
    runs = tuple(m.strip() for m in members.split(",") if m.strip())
    return name.strip(), runs
