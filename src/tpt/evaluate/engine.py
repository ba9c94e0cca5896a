"""The generation-engine contract (prompts in, completions out) and the lazy registry of engines."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tpt.core.errors import ConfigError
from tpt.core.registry import Registry

ENGINES: Registry[EngineClass] = Registry(
    "engines",
    {"hf": "tpt.evaluate.hf_engine:HFEngine", "vllm": "tpt.evaluate.vllm_engine:VllmEngine"},
    kind="engine",
)
"""name -> "module:Class"; the class is built as `Class(model_dir, dtype=, device=, batch_size=, seed=)`.
A third-party engine is an entry point in group `tpt.engines` (docs/plugins.md)."""
DTYPES = ("auto", "float32", "bfloat16", "float16")


@dataclass(frozen=True, kw_only=True, slots=True)
class GenParams:
    """How to generate: greedy when temperature is 0, else `samples` draws per prompt."""

    max_new_tokens: int
    stop: tuple[str, ...] = ()
    temperature: float = 0.0
    top_p: float = 1.0
    samples: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.samples < 1:
            raise ConfigError(f"samples must be >= 1, got {self.samples}")
        if self.samples > 1 and self.temperature == 0:
            raise ConfigError(
                "samples > 1 needs sampling: set a temperature > 0 (the paper uses 0.6, top-p 0.95)"
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class Completion:
    """One generated continuation, cut before its first stop string."""

    text: str
    num_tokens: int
    finish_reason: str
    """`stop` (a stop string), `eos` (end-of-sequence token) or `length` (max_new_tokens)."""


class Engine(Protocol):
    """Generates for a batch of prompts: one list of `samples` completions per prompt, in prompt order."""

    name: str

    def generate(self, prompts: Sequence[str], params: GenParams) -> list[list[Completion]]: ...

    def close(self) -> None: ...


EngineClass = Callable[..., Engine]
"""What an engine registry entry names: (model_dir, *, dtype, device, batch_size, seed) -> an Engine."""


def build_engine(
    kind: str,
    model_dir: Path,
    *,
    dtype: str = "auto",
    device: str = "cpu",
    batch_size: int = 32,
    seed: int = 0,
) -> Engine:
    """Import and construct an engine by name (`hf` or `vllm`)."""
    ENGINES.entry(kind)  # an unknown name fails first, and before anything is imported
    if dtype not in DTYPES:
        raise ConfigError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if batch_size < 1:
        raise ConfigError(f"batch size must be >= 1, got {batch_size}")
    return ENGINES.get_or_raise(kind)(model_dir, dtype=dtype, device=device, batch_size=batch_size, seed=seed)


def cut_at_stop(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """Text before the earliest stop string, and whether one was found."""
    cut = min((i for s in stop if (i := text.find(s)) >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
