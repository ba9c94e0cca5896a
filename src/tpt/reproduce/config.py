"""The settings of `tpt reproduce`: the run directory, the scale, the seeds, which worlds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from tpt.core.errors import ConfigError
from tpt.reproduce.presets import DEVELOPMENT_SEEDS, WORLDS, Scale, get_scale


@dataclass(frozen=True, kw_only=True, slots=True)
class ReproduceConfig:
    """One `tpt reproduce` run; everything that sizes it is fixed here, before anything trains."""

    output: Path
    """Run directory (re-run to resume: finished commands are reused)."""
    scale: str = "default"
    seeds: tuple[int, ...] | None = None
    """Run seeds (model init, data order, the shuffled control's derangement); None: the scale's."""
    world_seed: int = DEVELOPMENT_SEEDS["world_seed"][0]
    """Seed of both worlds (entities, train/held-out split, pool)."""
    test_seed: int = DEVELOPMENT_SEEDS["test_seed"][0]
    """Seed of both worlds' test draws."""
    worlds: tuple[str, ...] = WORLDS
    """The worlds to run; the first is the primary world of the pre-registration."""
    parallel: int | None = None
    """Jobs at once (one thread each); None: the scale's."""
    llm_teacher: bool = False
    """Add arm `tpt-llm` to the arithmetic world: the embedded SmolLM2-135M's thinking (opt-in: not in
    `make demo`'s 15 minutes; docs/reproduce.md says why)."""
    llm_max_thinking_tokens: int = 160
    budget_arms: bool = False
    """Add arms `tpt-uniform` and `tpt-difficulty` to every world: the oracle's thinking under one global
    budget of `budget_fraction` x the oracle's thinking tokens (reproduce/budget_arms.py; not in `make demo`)."""
    budget_fraction: float = 0.5
    part2: bool = False
    """Also run the embedded SmolLM2 teacher on the bundled sample corpus (trajectories only, no arm)."""
    overwrite_config: bool = False
    command: str = "tpt reproduce"
    """The command line that made this config, recorded in the summary."""

    def __post_init__(self) -> None:
        get_scale(self.scale)
        if (
            not self.worlds
            or any(w not in WORLDS for w in self.worlds)
            or len(set(self.worlds)) != len(self.worlds)
        ):
            raise ConfigError(
                f"--worlds must name distinct worlds among {', '.join(WORLDS)}, got {self.worlds}"
            )
        if self.seeds is not None and (not self.seeds or len(set(self.seeds)) != len(self.seeds)):
            raise ConfigError(f"--seeds must be distinct integers, got {self.seeds}")
        if self.llm_max_thinking_tokens < 1:
            raise ConfigError(f"--llm-max-thinking-tokens must be >= 1, got {self.llm_max_thinking_tokens}")
        if not 0.0 < self.budget_fraction <= 1.0:
            raise ConfigError(f"--budget-fraction must be in (0, 1], got {self.budget_fraction}")
        if self.parallel is not None and self.parallel < 1:
            raise ConfigError(f"--parallel must be >= 1, got {self.parallel}")
        for name in ("world_seed", "test_seed"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0")

    def resolved_scale(self) -> Scale:
        """The scale with this config's seeds, worlds and parallelism."""
        s = get_scale(self.scale)
        changes: dict[str, object] = {"worlds": {w: s.worlds[w] for w in self.worlds}}
        if self.seeds is not None:
            changes["seeds"] = self.seeds
        if self.parallel is not None:
            changes["parallel"] = self.parallel
        return dataclasses.replace(s, **changes)  # type: ignore[arg-type]

    @property
    def fresh(self) -> bool:
        """Whether both seeds are outside the development seeds (a confirmatory run)."""
        return (self.world_seed not in DEVELOPMENT_SEEDS["world_seed"]
                and self.test_seed not in DEVELOPMENT_SEEDS["test_seed"])  # fmt: skip
