"""The scales `tpt reproduce --scale` offers: token budgets, seeds, checkpoints and test-set sizes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tpt.errors import ConfigError


@dataclass(frozen=True, kw_only=True, slots=True)
class Scale:
    """Everything that sizes one `tpt reproduce` run."""

    name: str
    tokens_per_arm: int
    """Training tokens of every arm (the TPT arm's thinking tokens count against it)."""
    seeds: tuple[int, ...]
    """Seeds of the raw-vs-TPT pairs (model init, data order and the document sequence)."""
    extra_arm_seeds: tuple[int, ...]
    """Seeds that also get the data-constrained raw arm and the weak-teacher TPT arm."""
    num_checkpoints: int
    """Checkpoints per arm, spaced geometrically from tokens_per_arm / 32 to tokens_per_arm."""
    earlier_stop_fraction: float
    """The earlier stop point at which the factor is also reported, as a fraction of the budget."""
    test_per_type: int
    """Held-out test problems per evaluated problem type (six types)."""
    model_size: str = "tiny"
    seq_len: int = 128
    batch_tokens: int = 2048
    parallel_arms: int = 2
    """Arms trained at the same time, as separate processes."""
    threads_per_arm: int = 1
    weak_error_rate: float = 0.4
    """The weak teacher's chance to slip on a problem it solves from scratch."""
    eval_batch_size: int = 64
    eval_device: str = "cpu"
    part2_docs_per_domain: int = 4
    part2_max_thinking_tokens: int = 512
    """At 256, 11 of 12 trajectories of the embedded teacher hit the limit (measured), which hides their length."""
    part2_max_doc_tokens: int = 512

    def __post_init__(self) -> None:
        if self.tokens_per_arm < 32 * self.batch_tokens:
            raise ConfigError(f"scale {self.name}: tokens_per_arm must be >= 32 batches")
        if not self.seeds or not set(self.extra_arm_seeds) <= set(self.seeds):
            raise ConfigError(f"scale {self.name}: needs seeds, and extra_arm_seeds among them")
        if self.num_checkpoints < 2 or not 0 < self.earlier_stop_fraction < 1:
            raise ConfigError(
                f"scale {self.name}: num_checkpoints >= 2 and earlier_stop_fraction in (0, 1)"
            )

    def checkpoints(self) -> list[int]:
        """Geometric points from budget/32 to the budget in whole batches; the one nearest the earlier stop
        point moves onto it (so the factor can be read there too)."""
        b, n, bt = self.tokens_per_arm, self.num_checkpoints, self.batch_tokens
        points = [max(1, round(b / 32 * 32 ** (i / (n - 1)) / bt)) * bt for i in range(n)]
        points[-1] = -(-b // bt) * bt  # training runs whole batches up to the budget
        stop = self.earlier_stop_tokens()
        nearest = min(range(1, n - 1), key=lambda i: abs(points[i] - stop), default=None)
        if nearest is not None:
            points[nearest] = stop
        return sorted(set(points))

    def earlier_stop_tokens(self) -> int:
        return (
            round(self.tokens_per_arm * self.earlier_stop_fraction / self.batch_tokens)
            * self.batch_tokens
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SCALES: dict[str, Scale] = {
    s.name: s
    for s in (
        # About 2 minutes on 2 cores: checks that everything runs; the numbers mean little.
        Scale(
            name="quick",
            tokens_per_arm=131_072,
            seeds=(0,),
            extra_arm_seeds=(0,),
            num_checkpoints=4,
            earlier_stop_fraction=0.5,
            test_per_type=10,
            eval_batch_size=64,
            part2_docs_per_domain=1,
            part2_max_thinking_tokens=32,
            part2_max_doc_tokens=128,
        ),
        # `make demo`: two seeds at 3M tokens per arm, sized for <= 20 minutes on 2 quiet cores.
        Scale(
            name="default",
            tokens_per_arm=3_000_000,
            seeds=(0, 1),
            extra_arm_seeds=(0,),
            num_checkpoints=10,
            earlier_stop_fraction=2 / 3,
            test_per_type=60,
        ),
        # One GPU: larger budget, a 5M student, three seeds, the full extra arms.
        Scale(
            name="gpu",
            tokens_per_arm=30_000_000,
            seeds=(0, 1, 2),
            extra_arm_seeds=(0, 1, 2),
            num_checkpoints=12,
            earlier_stop_fraction=2 / 3,
            test_per_type=200,
            model_size="small",
            batch_tokens=16_384,
            parallel_arms=2,
            eval_batch_size=256,
            eval_device="cuda",
            part2_docs_per_domain=12,
            part2_max_thinking_tokens=1024,
            part2_max_doc_tokens=2048,
        ),
    )
}


def get_scale(name: str) -> Scale:
    if name not in SCALES:
        raise ConfigError(f"unknown --scale {name!r}; choose one of {', '.join(SCALES)}")
    return SCALES[name]
