"""The configs of `tpt train` and `tpt sft`, their checks, and the presets (the paper's Table 5 and the CPU
testbed).

- `TrainConfig` (`tpt train`) and `SftConfig` (`tpt sft`): what a user sets; `train.stage.run(TrainConfig)`
  and `sft.stage.run(SftConfig)` take them. Field names are the command-line options' names.
- `Preset`: the optimizer and the global batch; `pretrain()`, `midtrain()`, `testbed()` and `sft()`
  return the presets, `Preset.override(lr=...)` changes any part.
- `LoopConfig` and `OptimConfig`: what the training loop runs, made by `loop_config` once the data's
  sequence length and the budget in tokens are known.

Light on purpose (no torch, no numpy): the CLI modules import it.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from tpt.core.errors import ConfigError

Schedule = Literal["constant", "cosine", "wsd"]
SCHEDULES: tuple[str, ...] = ("constant", "cosine", "wsd")


@dataclass(frozen=True, kw_only=True, slots=True)
class OptimConfig:
    """AdamW and its learning-rate schedule."""

    lr: float
    """Peak learning rate, reached at the end of warmup."""
    schedule: Schedule = "constant"
    """constant (after warmup), cosine (to min_lr_ratio * lr), or wsd (warmup-stable-decay)."""
    warmup_steps: int = 0
    """Optimizer steps of linear warmup from lr / warmup_steps to lr."""
    min_lr_ratio: float = 0.1
    """Final lr of cosine and wsd, as a fraction of lr (the paper does not state its value)."""
    decay_fraction: float = 0.2
    """wsd only: the last fraction of the steps over which lr decays linearly to min_lr_ratio * lr."""
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.1
    """Decoupled weight decay on matrices (embeddings included); never on norms or biases."""
    grad_clip: float = 1.0
    """Clip the global gradient norm to this; 0 disables clipping (the norm is still checked)."""

    def __post_init__(self) -> None:
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"--lr must be a positive number, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.warmup_steps < 0:
            raise ConfigError(f"--warmup-steps must be >= 0, got {self.warmup_steps}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"--min-lr-ratio must be in [0, 1], got {self.min_lr_ratio}")
        if not 0 < self.decay_fraction <= 1:
            raise ConfigError(f"--decay-fraction must be in (0, 1], got {self.decay_fraction}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"--betas must be two numbers in [0, 1), got {self.betas}")
        if self.weight_decay < 0 or self.grad_clip < 0 or self.eps <= 0:
            raise ConfigError("--weight-decay and --grad-clip must be >= 0 and --adam-eps > 0")


@dataclass(frozen=True, kw_only=True, slots=True)
class LoopConfig:
    """What the training loop runs: budget, batch geometry, precision, checkpoints (the model is chosen
    separately). Made from a TrainConfig or SftConfig by `loop_config`."""

    optim: OptimConfig
    tokens: int
    """Token budget: training stops at the first step whose tokens seen reach it (rows x seq_len)."""
    batch_tokens: int
    """Global batch in tokens (all ranks, all micro-batches): a multiple of seq_len."""
    seq_len: int
    micro_batch_rows: int | None = None
    """Rows per forward pass on one rank; None picks the largest divisor with <= 8192 tokens."""
    precision: Literal["bf16", "fp32"] = "bf16"
    """bf16: autocast with fp32 master weights (CPU and GPU); fp32: no autocast."""
    seed: int = 0
    save_every_tokens: int | None = None
    save_at_tokens: tuple[int, ...] = ()
    log_every_steps: int = 10
    data_order: Literal["shuffle", "sequential"] = "shuffle"
    """shuffle: a new seeded permutation of the rows each epoch; sequential: rows in stored order."""
    max_bad_steps: int = 50
    """Abort after this many consecutive non-finite steps (each one is skipped and counted)."""
    extra: dict = field(default_factory=dict)
    """Recorded in the manifest only (e.g. the preset name)."""

    def __post_init__(self) -> None:
        if self.seq_len < 2:
            raise ConfigError(f"sequence length must be >= 2, got {self.seq_len}")
        if self.batch_tokens <= 0 or self.batch_tokens % self.seq_len:
            raise ConfigError(
                f"--batch-tokens {self.batch_tokens} must be a positive multiple of the data's "
                f"seq_len {self.seq_len} (e.g. {self.seq_len * 16})"
            )
        if self.tokens < self.batch_tokens:
            raise ConfigError(
                f"--tokens {self.tokens} is smaller than one batch (--batch-tokens {self.batch_tokens}); "
                "raise the budget or lower --batch-tokens (e.g. --preset testbed)"
            )
        if self.micro_batch_rows is not None and self.micro_batch_rows <= 0:
            raise ConfigError(f"--micro-batch must be >= 1, got {self.micro_batch_rows}")
        if self.save_every_tokens is not None and self.save_every_tokens <= 0:
            raise ConfigError(f"--save-every must be > 0 tokens, got {self.save_every_tokens}")
        if any(p <= 0 for p in self.save_at_tokens):
            raise ConfigError(f"--save-at points must be > 0 tokens, got {list(self.save_at_tokens)}")
        if self.log_every_steps <= 0:
            raise ConfigError(f"--log-every must be >= 1 step, got {self.log_every_steps}")
        if self.precision not in ("bf16", "fp32"):
            raise ConfigError(f"--precision must be bf16 or fp32, got {self.precision!r}")
        if self.data_order not in ("shuffle", "sequential"):
            raise ConfigError(f"--data-order must be shuffle or sequential, got {self.data_order!r}")

    @property
    def rows_per_step(self) -> int:
        return self.batch_tokens // self.seq_len

    @property
    def total_steps(self) -> int:
        # The budget is reached, never cut short: 3,000,000 tokens at 2,048 per step -> 1,465 steps.
        return -(-self.tokens // self.batch_tokens)

    def save_steps(self) -> list[int]:
        """Steps (1-based counts of optimizer steps) after which a checkpoint is written; always the last."""
        points = list(self.save_at_tokens)
        if self.save_every_tokens:
            points += range(self.save_every_tokens, self.tokens, self.save_every_tokens)
        steps = {min(-(-p // self.batch_tokens), self.total_steps) for p in points}
        return sorted(steps | {self.total_steps})


@dataclass(frozen=True, kw_only=True, slots=True)
class Preset:
    """The optimizer, its schedule and the global batch: what `--preset` sets (each option overrides it)."""

    name: str | None
    """Recorded in the run's manifest (None: set by hand)."""
    optim: OptimConfig
    batch_tokens: int
    """Global batch in tokens (all processes; reached by gradient accumulation)."""

    def override(self, **changes: Any) -> Preset:
        """This preset with some settings changed: `batch_tokens` or any OptimConfig field."""
        batch_tokens = changes.pop("batch_tokens", self.batch_tokens)
        return replace(self, optim=replace(self.optim, **changes), batch_tokens=batch_tokens)


# "pretrain", "midtrain" and "sft" are the paper's Table 5 (8B pre-training; the 3B mid-training and SFT
# columns: 1.5B uses lr 6e-5, 7B 3e-5). 4M / 8M / 1M tokens are taken as 2^22 / 2^23 / 2^20 so they divide
# by the usual sequence lengths. "testbed" is the CPU pilot's setting that trained a ~1M-parameter student
# without diverging. docs/train.md's table is checked against these (tests/train/test_cli_config.py); the
# recipes/ spell their values out as flags, checked against Table 5 written out in tests/recipes.
def pretrain() -> Preset:
    """[P] Table 5, pre-training from scratch (8B)."""
    optim = OptimConfig(
        lr=3e-4, schedule="constant", warmup_steps=100, betas=(0.9, 0.95), weight_decay=0.1, grad_clip=1.0
    )
    return Preset(name="pretrain", optim=optim, batch_tokens=4 * 2**20)


def midtrain() -> Preset:
    """[P] Table 5, mid-training (3B; 1.5B uses lr 6e-5, 7B 3e-5)."""
    optim = OptimConfig(
        lr=4e-5, schedule="cosine", warmup_steps=100, betas=(0.9, 0.95), weight_decay=0.1, grad_clip=0.3
    )
    return Preset(name="midtrain", optim=optim, batch_tokens=8 * 2**20)


def testbed() -> Preset:
    """The CPU testbed of `tpt reproduce` (a ~1M-parameter student, batches of 16 x 128 tokens)."""
    optim = OptimConfig(
        lr=2e-3, schedule="constant", warmup_steps=50, betas=(0.9, 0.98), weight_decay=0.1, grad_clip=1.0
    )
    return Preset(name="testbed", optim=optim, batch_tokens=2048)


def sft() -> Preset:
    """[P] Table 5, supervised fine-tuning (3B; 1.5B uses lr 6e-5, 7B 3e-5)."""
    optim = OptimConfig(
        lr=4e-5, schedule="cosine", warmup_steps=400, betas=(0.9, 0.999), weight_decay=0.0, grad_clip=0.2
    )
    return Preset(name="sft", optim=optim, batch_tokens=2**20)


PRESETS = {"pretrain": pretrain, "midtrain": midtrain, "testbed": testbed, "sft": sft}
"""Preset name (`--preset`) -> the function that returns it."""

PRECISIONS = ("bf16", "fp32")
DATA_ORDERS = ("shuffle", "sequential")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True, kw_only=True, slots=True)
class RunOptions:
    """What `tpt train` and `tpt sft` share: batch geometry, precision, checkpoints, logs, hardware."""

    output: Path
    """The run directory (re-run to resume)."""
    micro_batch: int | None = None
    """Rows per forward pass per process (None: the largest that fits 8192 tokens)."""
    precision: str = "bf16"
    """bf16 autocast with fp32 weights, or fp32."""
    seed: int = 0
    """Model init and data order."""
    data_order: str = "shuffle"
    """shuffle: a new seeded permutation of rows each epoch; sequential: stored order."""
    save_every: int | None = None
    """A checkpoint every this many tokens (the end of the budget is always saved)."""
    save_at: tuple[int, ...] = ()
    """Checkpoints also at these token counts."""
    log_every: int = 10
    """Optimizer steps per metrics.jsonl line."""
    tensorboard: bool = False
    wandb: bool = False
    overwrite_config: bool = False
    """Continue a run directory made with a different config."""
    threads: int | None = None
    """CPU threads per process (torch.set_num_threads; None: torch's)."""
    device: str = "auto"
    """auto (cuda if available), cpu or cuda."""
    fsdp: bool = False
    """Shard the model with FSDP2 across processes."""

    @property
    def chosen_preset(self) -> Preset:
        """The preset the loop runs with."""
        raise NotImplementedError

    def _check(self) -> None:
        object.__setattr__(self, "output", Path(self.output))
        object.__setattr__(self, "save_at", tuple(sorted(set(self.save_at))))
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads must be >= 1, got {self.threads}")
        if self.device not in DEVICES:
            raise ConfigError(f"--device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"--precision must be bf16 or fp32, got {self.precision!r}")
        if self.data_order not in DATA_ORDERS:
            raise ConfigError(f"--data-order must be shuffle or sequential, got {self.data_order!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainConfig(RunOptions):
    """`tpt train`: pre-train a new student, or mid-train a local checkpoint, on a PACK_DIR."""

    data_dir: Path
    """A PACK_DIR written by `tpt pack`."""
    tokens: int
    """Token budget; cycles over the data in epochs if larger than it."""
    preset: Preset | None = None
    """None: midtrain() with `init`, pretrain() otherwise."""
    model_size: str = "tiny"
    """A new student's shape (train/model.py SIZES); ignored with `init`."""
    qk_norm: bool | None = None
    """RMSNorm on queries and keys (None: on for tiny/small/medium); only for a new student."""
    init: str | None = None
    """Start from this local Hugging Face checkpoint (mid-training)."""
    block_attention: bool = False
    """No attention across samples packed in one row (positions restart per sample)."""

    def __post_init__(self) -> None:
        self._check()
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.init and self.qk_norm is not None:
            raise ConfigError(
                "--qk-norm/--no-qk-norm shape a new model; --init keeps the checkpoint's architecture"
            )
        if self.tokens <= 0:
            raise ConfigError(f"--tokens must be > 0, got {self.tokens}")

    @property
    def chosen_preset(self) -> Preset:
        return self.preset or (midtrain() if self.init else pretrain())


def loop_config(config: RunOptions, *, seq_len: int, tokens: int) -> LoopConfig:
    """What the loop runs for a stage config (train's or sft's), once the sequence length and the budget
    are known."""
    preset = config.chosen_preset
    return LoopConfig(
        optim=preset.optim,
        tokens=tokens,
        batch_tokens=preset.batch_tokens,
        seq_len=seq_len,
        micro_batch_rows=config.micro_batch,
        precision=config.precision,
        seed=config.seed,
        save_every_tokens=config.save_every,
        save_at_tokens=config.save_at,
        log_every_steps=config.log_every,
        data_order=config.data_order,
        extra={"preset": preset.name},
    )


def fingerprint_fields(cfg: LoopConfig) -> dict[str, object]:
    """The parts of a LoopConfig that change the trained weights (not threads, logging or save points).

    The budget counts only when the schedule depends on it: a constant-lr run can be extended by
    re-running it with a larger --tokens.
    """
    out: dict[str, object] = {
        "optim": asdict(cfg.optim),
        "batch_tokens": cfg.batch_tokens,
        "seq_len": cfg.seq_len,
        "precision": cfg.precision,
        "seed": cfg.seed,
        "data_order": cfg.data_order,
    }
    if cfg.optim.schedule != "constant":
        out["tokens"] = cfg.tokens
    return out


_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "ki": 2**10, "mi": 2**20, "gi": 2**30}


def parse_tokens(text: str, *, option: str) -> int:
    """'3000000', '3M', '1.5m', '200k', '3e6' -> an int count of tokens; binary 'Ki', 'Mi', 'Gi' too
    ('4Mi' = 4,194,304: the paper's "4M-token batch" as a multiple of its 8,192-token rows)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmbg]i?)?\s*", str(text).lower())
    if not m:
        raise ConfigError(f"{option}: {text!r} is not a token count (examples: 3000000, 3M, 200k, 3e6)")
    value = float(m.group(1)) * _SUFFIX[m.group(2) or ""]
    if value != int(value) or value <= 0:
        raise ConfigError(f"{option}: {text!r} must be a positive whole number of tokens")
    return int(value)


def parse_token_list(text: str, *, option: str) -> tuple[int, ...]:
    """'100k,200k,1.5M' -> (100000, 200000, 1500000), sorted and deduplicated."""
    items = [t for t in str(text).split(",") if t.strip()]
    if not items:
        raise ConfigError(f"{option}: give comma-separated token counts, e.g. 100000,200000")
    return tuple(sorted({parse_tokens(t, option=option) for t in items}))


def __getattr__(name: str) -> object:
    # Old path, kept for one release (issue 24: SftConfig and SFT_EPOCHS moved to tpt.sft.config, sft's
    # own stage). Looked up only when the old name is used, so train still never imports sft.
    if name in ("SftConfig", "SFT_EPOCHS"):
        import importlib
        import warnings

        warnings.warn(
            f"tpt.train.config.{name} moved to tpt.sft.config.{name}", DeprecationWarning, stacklevel=2
        )
        return getattr(importlib.import_module("tpt.sft.config"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
