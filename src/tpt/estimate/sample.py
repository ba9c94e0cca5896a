"""A uniform random sample of a corpus's items, drawn in one streaming pass (reservoir sampling)."""

from __future__ import annotations

import json
import random
from pathlib import Path

from tpt.core.errors import ConfigError
from tpt.formats.corpus import iter_items, resolve_inputs


def draw_sample(inputs: list[str], size: int, *, seed: int, out: Path) -> tuple[int, int]:
    """Write `size` items chosen uniformly (the same ones for the same seed) to `out` as JSONL, in input
    order; returns (items in the corpus, items in the sample). Memory: the sample, not the corpus."""
    if size < 1:
        raise ConfigError(f"--sample must be >= 1, got {size}")
    rng = random.Random(seed)
    reservoir: list[tuple[int, str]] = []
    total = 0
    for item in iter_items(resolve_inputs(inputs)):
        total += 1
        # Algorithm R: item i (0-based) replaces a kept one with probability size / (i + 1).
        slot = item.index if item.index < size else rng.randrange(item.index + 1)
        if slot < size:
            line = (
                item.raw
                if isinstance(item.raw, str)
                else json.dumps(item.raw, ensure_ascii=False, default=str)
            )
            entry = (item.index, line.rstrip("\n"))
            if item.index < size:
                reservoir.append(entry)
            else:
                reservoir[slot] = entry
    reservoir.sort()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(line + "\n" for _, line in reservoir), encoding="utf-8")
    return total, len(reservoir)
