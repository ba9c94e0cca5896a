"""The scales `tpt reproduce --scale` offers: per world, its size, token budget, checkpoints and test size;
for the run, its seeds. Everything here is fixed before training (it goes into preregistration.json)."""

from __future__ import annotations

from dataclasses import dataclass

from tpt.core.errors import ConfigError

WORLDS = ("knowledge", "arithmetic")
"""The worlds `tpt reproduce` runs, the primary one first (docs/reproduce.md)."""
ARMS = ("raw", "tpt", "tpt-shuffled", "tpt-filler")
"""Every world's arms: no thinking, the oracle's, the oracle's deranged across documents (`tpt pack
--control shuffled`), content-free thinking of the same token counts (`tpt pack --control filler`)."""

DEVELOPMENT_SEEDS = {"world_seed": (1234,), "test_seed": (0,)}
"""World and test seeds the design was developed and tuned on (every run before the confirmatory one,
the knowledge world's sizing pilots included). A confirmatory run uses seeds outside these;
`summary.json` records them and says whether the run's seeds are among them."""
CONFIRMATORY_SEEDS = {"world_seed": 20261207, "test_seed": 7}
"""The seeds `make demo` runs (docs/demo): no development run used them."""


@dataclass(frozen=True, kw_only=True, slots=True)
class WorldScale:
    """How one world is sized: its training pool, the budget every arm trains for, where checkpoints are
    scored, and how many test items per stratum (knowledge: seen/heldout; arithmetic: level)."""

    tokens_per_arm: int
    checkpoints: tuple[int, ...]
    """Token counts scored by `tpt eval` (the last is the budget, rounded up to whole batches)."""
    pool: int
    """Knowledge: seen traders (one document each); arithmetic: pool documents."""
    test_per_stratum: int
    heldout_entities: int = 100
    """Knowledge only: test-only traders."""
    max_level: int = 3
    """Arithmetic only: the problem types of levels 1..max_level (and facts) make the pool and the test."""
    max_new_tokens: int = 32
    model_size: str = "tiny"
    seq_len: int = 128
    batch_tokens: int = 2048

    def __post_init__(self) -> None:
        cps = self.checkpoints
        if len(cps) < 2 or list(cps) != sorted(set(cps)) or cps[0] <= 0:
            raise ConfigError(f"checkpoints must be >= 2 increasing positive token counts, got {cps}")
        if cps[-1] < self.tokens_per_arm or cps[-1] - self.tokens_per_arm >= self.batch_tokens:
            raise ConfigError(f"the last checkpoint ({cps[-1]}) must be the budget {self.tokens_per_arm}")
        if any(c % self.batch_tokens for c in cps):
            raise ConfigError(f"checkpoints must be whole batches of {self.batch_tokens} tokens, got {cps}")
        if not 1 <= self.max_level <= 3:
            raise ConfigError(f"max_level must be 1, 2 or 3, got {self.max_level}")
        if self.pool < 2 or self.test_per_stratum < 1:
            raise ConfigError("a world needs a pool of >= 2 and >= 1 test item per stratum")


def grid(tokens: int, fractions: tuple[float, ...], batch: int = 2048) -> tuple[int, ...]:
    """Checkpoints at these fractions of the budget, in whole batches, the last at the budget."""
    last = -(-tokens // batch) * batch
    inner = {max(1, round(tokens * f / batch)) * batch for f in fractions if f < 1} - {last}
    return tuple(sorted(p for p in inner if p < last)) + (last,)


@dataclass(frozen=True, kw_only=True, slots=True)
class Scale:
    """One `tpt reproduce` size: the seeds and each world's sizing."""

    name: str
    seeds: tuple[int, ...]
    worlds: dict[str, WorldScale]
    parallel: int = 2
    """Jobs at once, one thread each."""
    bootstrap_replicates: int = 1000
    eval_batch_size: int = 200

    def __post_init__(self) -> None:
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"scale {self.name}: needs distinct seeds")
        if set(self.worlds) - set(WORLDS) or not self.worlds:
            raise ConfigError(f"scale {self.name}: worlds must be among {', '.join(WORLDS)}")


# Dense checkpoints where the curves rise (the sizing pilots on the development seeds), none where every
# arm is still at 0.0.
KNOWLEDGE_FRACTIONS = (0.3, 0.45, 0.6, 0.7, 0.8, 0.9, 1.0)
ARITHMETIC_FRACTIONS = (0.25, 0.4, 0.55, 0.7, 0.85, 1.0)

SCALES: dict[str, Scale] = {
    s.name: s
    for s in (
        # Seconds per job: checks the plumbing; the numbers mean nothing.
        Scale(name="quick", seeds=(0,), bootstrap_replicates=50, worlds={
            "knowledge": WorldScale(tokens_per_arm=8192, checkpoints=(4096, 8192), pool=24, heldout_entities=8,
                                    test_per_stratum=6, max_new_tokens=24),
            "arithmetic": WorldScale(tokens_per_arm=8192, checkpoints=(4096, 8192), pool=40, test_per_stratum=4,
                                     max_new_tokens=24)}),
        # `make demo`: both worlds x 4 arms x 5 seeds, sized for <= 15 minutes on 2 idle cores.
        Scale(name="default", seeds=(0, 1, 2, 3, 4), worlds={
            "knowledge": WorldScale(tokens_per_arm=200_000, checkpoints=grid(200_000, KNOWLEDGE_FRACTIONS),
                                    pool=150, test_per_stratum=100),
            "arithmetic": WorldScale(tokens_per_arm=250_000, checkpoints=grid(250_000, ARITHMETIC_FRACTIONS),
                                     pool=800, test_per_stratum=40, max_new_tokens=40)}),
        # For whoever has an hour: longer budgets, more test items.
        Scale(name="full", seeds=(0, 1, 2, 3, 4, 5, 6, 7), worlds={
            "knowledge": WorldScale(tokens_per_arm=400_000, checkpoints=grid(400_000, KNOWLEDGE_FRACTIONS),
                                    pool=150, test_per_stratum=150),
            "arithmetic": WorldScale(tokens_per_arm=1_000_000, checkpoints=grid(1_000_000, ARITHMETIC_FRACTIONS),
                                     pool=800, test_per_stratum=80, max_new_tokens=48)}),
    )
}  # fmt: skip


def get_scale(name: str) -> Scale:
    if name not in SCALES:
        raise ConfigError(f"unknown --scale {name!r}; choose one of {', '.join(SCALES)}")
    return SCALES[name]
