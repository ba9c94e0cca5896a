"""The config of `tpt tokenizer train`: what the BPE is learned from, where it goes, and its size.

Checked when it is made; `tokenizer/cli.py` takes its option defaults from these fields."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tpt.core.errors import ConfigError

EOS_TOKEN = "<|endoftext|>"
THINK_TAGS = ("<think>", "</think>")
_BYTE_ALPHABET = 256


@dataclass(frozen=True, kw_only=True, slots=True)
class TokenizerConfig:
    """What `tpt tokenizer train` learns from, where it writes, and how it builds its tokenizer."""

    corpus: tuple[str | Path, ...]
    """JSONL files or directories (any input `tpt pack` accepts: augment output works as is)."""
    output: Path
    """The directory to write tokenizer.json and its config to."""
    vocab_size: int
    """Size of the vocabulary, special and added tokens included."""
    fields: tuple[str, ...] = ("text", "thinking")
    """Record fields whose text the merges are learned from."""
    min_frequency: int = 2
    """A pair must occur this often to be merged."""
    think_tokens: bool = False
    """Add `<think>` and `</think>` as single added tokens (otherwise they are plain text)."""
    max_records: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.corpus, str | Path) or not self.corpus:
            raise ConfigError("the tokenizer needs a sequence of one or more corpus inputs")
        object.__setattr__(self, "corpus", tuple(self.corpus))
        object.__setattr__(self, "output", Path(self.output))
        reserved = _BYTE_ALPHABET + 1 + (2 if self.think_tokens else 0)
        if self.vocab_size <= reserved:
            raise ConfigError(
                f"--vocab-size must exceed {reserved} (256 byte tokens + {reserved - 256} added), "
                f"got {self.vocab_size}"
            )
        unknown = sorted(set(self.fields) - {"text", "thinking"})
        if unknown or not self.fields:
            raise ConfigError(
                f"--fields: choose from text, thinking (got {', '.join(self.fields) or 'none'})"
            )
        if self.min_frequency < 1:
            raise ConfigError(f"--min-frequency must be >= 1, got {self.min_frequency}")
