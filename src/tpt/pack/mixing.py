"""Which samples a record becomes: per-source weights, the raw/augmented mix, and a seeded shuffle.

Every random choice is a pure function of (seed, record position, copy), never of batch boundaries or
of which other records were kept, so the raw and the TPT arm packed with the same seed make the same
choices for the same documents.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from tpt.core.errors import ConfigError
from tpt.quality.ngrams import mix64

T = TypeVar("T")

# Separate streams so that the weight draw and the mix draw of one record are independent.
_STREAM_WEIGHT, _STREAM_MIX = 1, 2


def parse_weights(specs: Iterable[str]) -> dict[str, float]:
    """`--weights fineweb-edu=0.125,megamath=1` (repeatable) -> {source: weight}."""
    weights: dict[str, float] = {}
    for spec in specs:
        for item in filter(None, (s.strip() for s in spec.split(","))):
            source, sep, value = item.rpartition("=")
            try:
                weight = float(value)
            except ValueError:
                weight = -1.0
            if not sep or not source or not math.isfinite(weight) or weight < 0:
                raise ConfigError(f"--weights {item!r}: expected SOURCE=WEIGHT with a weight >= 0")
            weights[source] = weight
    return weights


def uniforms(seed: int, stream: int, ordinals: np.ndarray, copies: np.ndarray | int = 0) -> np.ndarray:
    """Deterministic uniforms in [0, 1), one per (ordinal, copy): a hash, not a generator's state."""
    with np.errstate(over="ignore"):
        key = (
            np.asarray(ordinals, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)
            + np.asarray(copies, dtype=np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
            + np.uint64((seed * 1_000_003 + stream) & (2**64 - 1))
        )
        return (mix64(mix64(key)) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass(frozen=True, kw_only=True, slots=True)
class SamplePlanner:
    """Decides, per record, how many samples it becomes and which of them carry the thinking."""

    seed: int
    weights: dict[str, float]
    """Weight per source; a source not listed has weight 1."""
    raw_fraction: float
    """Chance that a sample is the raw document (no thinking): 0 for --mode tpt, 1 for --mode raw."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.raw_fraction <= 1.0:
            raise ConfigError(f"--mix must be in [0, 1], got {self.raw_fraction}")

    def copies(self, ordinals: np.ndarray, sources: list[str]) -> np.ndarray:
        """Samples per record: floor(w), plus one more with probability frac(w). Weight 0.125 keeps
        one record in eight on average; weight 2 packs each record twice."""
        w = np.array([self.weights.get(s, 1.0) for s in sources], dtype=np.float64)
        whole = np.floor(w)
        extra = uniforms(self.seed, _STREAM_WEIGHT, ordinals) < (w - whole)
        return (whole + extra).astype(np.int64)

    def raw_flags(self, ordinal: int, num_copies: int) -> list[bool]:
        """For each copy of a record: True when it is packed as the raw document."""
        if self.raw_fraction in (0.0, 1.0) or num_copies == 0:
            return [self.raw_fraction == 1.0] * num_copies
        u = uniforms(self.seed, _STREAM_MIX, np.full(num_copies, ordinal), np.arange(num_copies))
        return (u < self.raw_fraction).tolist()


class ShuffleBuffer(Generic[T]):
    """A seeded buffered shuffle: memory holds `size` items, whatever the corpus size.

    Each new item replaces a random slot of a full buffer and the old occupant is emitted. An item can
    move arbitrarily far toward the end but at most `size` places toward the start of the stream; a
    buffer larger than the corpus gives a uniform permutation. size 0 keeps the input order.
    """

    _BLOCK = 4096

    def __init__(self, size: int, seed: int) -> None:
        if size < 0:
            raise ConfigError(f"--shuffle-buffer must be >= 0, got {size}")
        self.size = size
        self._rng = np.random.default_rng(seed)
        self._items: list[T] = []
        self._draws: list[int] = []

    def push(self, items: Iterable[T]) -> list[T]:
        if self.size == 0:
            return list(items)
        out: list[T] = []
        for item in items:
            if len(self._items) < self.size:
                self._items.append(item)
                continue
            if not self._draws:
                # Drawn in fixed blocks so the sequence does not depend on how items are batched.
                self._draws = self._rng.integers(0, self.size, self._BLOCK).tolist()[::-1]
            j = self._draws.pop()
            out.append(self._items[j])
            self._items[j] = item
        return out

    def drain(self) -> list[T]:
        items, self._items = self._items, []
        if self.size == 0:
            return items
        return [items[i] for i in self._rng.permutation(len(items))]
