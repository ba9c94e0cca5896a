"""The config of `tpt sft`: the chat data, the checkpoint to fine-tune, and the budget.

Checked when it is made; `sft/cli.py` takes its option defaults from these fields. What it shares with
`tpt train` (batch geometry, precision, checkpoints, logs, hardware) is `train.config.RunOptions`: sft is
built on train's loop (train never imports sft)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tpt.core.errors import ConfigError
from tpt.train.config import Preset, RunOptions, sft

SFT_EPOCHS = 5.0
"""The paper's SFT budget: 5 epochs ([P] Table 5); `tpt sft` trains for it unless given --epochs or --tokens."""


@dataclass(frozen=True, kw_only=True, slots=True)
class SftConfig(RunOptions):
    """`tpt sft`: fine-tune a checkpoint on chat data, loss on assistant tokens only."""

    data: tuple[Path, ...]
    """Chat data: JSONL lines with a `messages` list, or GSM8K-style `question`/`answer`."""
    init: str
    """The local Hugging Face checkpoint to fine-tune."""
    preset: Preset = field(default_factory=sft)
    epochs: float | None = None
    """Passes over the packed examples (None, and no `tokens`: SFT_EPOCHS, as the paper)."""
    tokens: int | None = None
    """A token budget instead of epochs."""
    seq_len: int = 2048
    """Tokens per packed row (the paper: 32k)."""
    rope_theta_scale: float = 1.0
    """Multiply the RoPE base for a longer context (the paper: 16 for 8k -> 32k)."""
    chat_template: str | None = None
    """'chatml' or a Jinja template file (None: the tokenizer's own, else ChatML)."""
    max_examples: int | None = None
    """Use only the first N examples."""

    @property
    def chosen_preset(self) -> Preset:
        return self.preset

    def __post_init__(self) -> None:
        self._check()
        if isinstance(self.data, str | Path) or not self.data:
            raise ConfigError("sft needs a sequence of one or more chat data files")
        object.__setattr__(self, "data", tuple(Path(p) for p in self.data))
        if self.seq_len < 16:
            raise ConfigError(f"--seq-len must be >= 16, got {self.seq_len}")
        if self.epochs is not None and self.tokens is not None:
            raise ConfigError("--epochs and --tokens are two budgets: give one")
        if self.epochs is not None and self.epochs <= 0:
            raise ConfigError(f"--epochs must be > 0, got {self.epochs}")
        if self.tokens is not None and self.tokens <= 0:
            raise ConfigError(f"--tokens must be > 0, got {self.tokens}")
