"""Write packed rows as memory-mappable NumPy shards, and the index.json that describes them.

Per shard k: `shard-{k:05d}.tokens.npy` (rows, seq_len) uint16/uint32, `.kinds.npy` uint8 and
`.segments.npy` uint16, written with np.save so `np.load(path, mmap_mode="r")` reads any row. A shard
is written to a temporary name and renamed, so a reader never sees half a shard.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from tpt.pack.packing import Rows

FORMAT = "tpt-packed-v1"


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 when every id fits (vocab_size <= 65536), else uint32."""
    return np.dtype(np.uint16) if vocab_size <= 1 << 16 else np.dtype(np.uint32)


def shard_name(k: int) -> str:
    return f"shard-{k:05d}"


class ShardWriter:
    """Buffers rows until a shard is full (memory: one shard), then writes it."""

    def __init__(self, out_dir: Path, *, seq_len: int, dtype: np.dtype, rows_per_shard: int) -> None:
        self.out_dir, self.seq_len, self.dtype = Path(out_dir), seq_len, dtype
        self.rows_per_shard = max(1, rows_per_shard)
        self.shards: list[dict[str, Any]] = []
        self.kind_counts = np.zeros(256, dtype=np.int64)
        """Tokens of each kind written so far, counted from the arrays themselves."""
        self._blocks: list[Rows] = []
        self._buffered = 0

    def add(self, rows: Rows) -> None:
        if len(rows) == 0:
            return
        self._blocks.append(rows)
        self._buffered += len(rows)
        while self._buffered >= self.rows_per_shard:
            self._write(self.rows_per_shard)

    def close(self) -> list[dict[str, Any]]:
        if self._buffered:
            self._write(self._buffered)
        return self.shards

    @property
    def num_rows(self) -> int:
        return sum(s["rows"] for s in self.shards) + self._buffered

    def _write(self, n: int) -> None:
        tokens = np.concatenate([b.tokens for b in self._blocks])
        kinds = np.concatenate([b.kinds for b in self._blocks])
        segments = np.concatenate([b.segments for b in self._blocks])
        rest = Rows(tokens[n:], kinds[n:], segments[n:])
        self._blocks = [rest] if len(rest) else []
        self._buffered -= n
        name = shard_name(len(self.shards))
        self.kind_counts += np.bincount(kinds[:n].ravel(), minlength=256)
        for suffix, array in (
            ("tokens", tokens[:n].astype(self.dtype, copy=False)),
            ("kinds", kinds[:n]),
            ("segments", segments[:n]),
        ):
            _save_atomic(self.out_dir / f"{name}.{suffix}.npy", np.ascontiguousarray(array))
        self.shards.append({"name": name, "rows": n})


def _save_atomic(path: Path, array: np.ndarray) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        np.save(f, array, allow_pickle=False)
    os.replace(tmp, path)
