"""The scales `tpt reproduce --scale` offers: token budgets, seeds, checkpoints and test-set sizes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tpt.core.errors import ConfigError
from tpt.train.config import testbed

TASKS = {"testbed-cot": "cot", "testbed-direct": "direct", "testbed-think": "think"}
"""The `tpt eval` tasks every arm is scored by (experiment.task_file), and their short names (modes)."""


@dataclass(frozen=True, kw_only=True, slots=True)
class Scale:
    """Everything that sizes one `tpt reproduce` run, the protocol included: it is fixed before training."""

    name: str
    tokens_per_arm: int
    """Training tokens of every arm (the TPT arms' thinking tokens count against it)."""
    seeds: tuple[int, ...]
    """Run seeds: model init and data order of every arm (the pool and the test set do not change)."""
    ablation_seeds: tuple[int, ...] = ()
    """Seeds that also train the ablation arms (exercises, weak teacher)."""
    primary_endpoint: str = "testbed-cot"
    """The task the report leads with, named before anything is trained; the others are secondary."""
    num_checkpoints: int = 8
    """Checkpoints per arm, spaced geometrically from tokens_per_arm / 32 to tokens_per_arm."""
    test_per_level: int = 80
    """Held-out test problems per level (levels 1-3), cycling through distinct held-out computations."""
    pool_documents: int = 800
    """Distinct training documents, the same for every arm (see testbed.pool)."""
    worked_fraction: float = 0.5
    """Share of the pool's problem documents that show their working inline (testbed.CorpusConfig)."""
    cot_max_new_tokens: int = 48
    llm_teacher: bool = True
    """Run the embedded SmolLM2 as a teacher (arm tpt-llm)."""
    llm_max_thinking_tokens: int = 48
    """Its thinking cap per pool document, sized for the time budget (its trajectories are reported)."""
    llm_batch_size: int = 64
    bootstrap_replicates: int = 1000
    model_size: str = "tiny"
    seq_len: int = 128
    batch_tokens: int = field(default_factory=lambda: testbed().batch_tokens)
    """Passed with `--preset testbed`, whose batch is the default (the gpu scale sets its own)."""
    parallel_arms: int = 2
    """Arms trained at the same time, as separate processes."""
    threads_per_arm: int = 1
    eval_batch_size: int = 100
    eval_device: str = "cpu"
    part2: bool = False
    """Part 2: the embedded teacher on the bundled sample corpus (its 48 documents)."""
    part2_max_thinking_tokens: int = 1024
    part2_max_doc_tokens: int = 1024

    def __post_init__(self) -> None:
        if self.tokens_per_arm < 32 * self.batch_tokens:
            raise ConfigError(f"scale {self.name}: tokens_per_arm must be >= 32 batches")
        if not self.seeds or not set(self.ablation_seeds) <= set(self.seeds):
            raise ConfigError(f"scale {self.name}: needs seeds, and ablation_seeds among them")
        if self.num_checkpoints < 2:
            raise ConfigError(f"scale {self.name}: num_checkpoints must be >= 2")
        if self.primary_endpoint not in TASKS:
            raise ConfigError(f"scale {self.name}: primary_endpoint must be one of {', '.join(TASKS)}")

    def checkpoints(self) -> list[int]:
        """Geometric points from budget/32 to the budget, in whole batches."""
        b, n, bt = self.tokens_per_arm, self.num_checkpoints, self.batch_tokens
        points = [max(1, round(b / 32 * 32 ** (i / (n - 1)) / bt)) * bt for i in range(n)]
        points[-1] = -(-b // bt) * bt  # training runs whole batches up to the budget
        return sorted(set(points))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


SCALES: dict[str, Scale] = {
    s.name: s
    for s in (
        # About a minute on 2 cores: checks that everything runs; the numbers mean nothing.
        Scale(name="quick", tokens_per_arm=65_536, seeds=(0,), num_checkpoints=3, test_per_level=8,
              pool_documents=48, cot_max_new_tokens=24, llm_max_thinking_tokens=8, llm_batch_size=48,
              bootstrap_replicates=50),
        # `make demo`: three seeds, four arms, sized for <= 20 minutes on 2 quiet cores.
        Scale(name="default", tokens_per_arm=1_000_000, seeds=(0, 1, 2)),
        # For whoever has an hour or more: five seeds, the ablations, a longer budget and Part 2.
        Scale(name="full", tokens_per_arm=3_000_000, seeds=(0, 1, 2, 3, 4), ablation_seeds=(0, 1, 2, 3, 4),
              num_checkpoints=10, test_per_level=200, pool_documents=1600, llm_max_thinking_tokens=96,
              part2=True),
        # One GPU: a larger budget and the 5M student.
        Scale(name="gpu", tokens_per_arm=30_000_000, seeds=(0, 1, 2, 3, 4), ablation_seeds=(0, 1, 2),
              num_checkpoints=12, test_per_level=300, pool_documents=4000, llm_max_thinking_tokens=256,
              model_size="small", batch_tokens=16_384, eval_batch_size=256, eval_device="cuda", part2=True),
    )
}  # fmt: skip


def get_scale(name: str) -> Scale:
    if name not in SCALES:
        raise ConfigError(f"unknown --scale {name!r}; choose one of {', '.join(SCALES)}")
    return SCALES[name]


DEVELOPMENT_SEEDS = {"world_seed": (1234,), "test_seed": (0,)}
"""World and test seeds the design was developed and tuned on (every run before issue 23). A confirmatory
run uses `--world-seed`/`--test-seed` values outside these; `summary.json` records them and says whether
the run's seeds are among them."""
