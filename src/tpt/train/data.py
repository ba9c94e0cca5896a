"""Read a PACK_DIR (docs/architecture.md) as memory-mapped rows and cut it into training batches.

The order of rows is a pure function of (seed, epoch), so a run's data position is one integer (rows
consumed) and resume needs no iterator state. Batches are numpy; the loop turns them into tensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from tpt.core.errors import ArtifactError, InputError
from tpt.formats.packfile import KIND_PAD, LOSS_KINDS, open_part, read_pack_index

IGNORE_INDEX = -100


@dataclass(frozen=True, kw_only=True, slots=True)
class RowBatch:
    """A micro-batch of B rows of T tokens, ready for a causal LM."""

    input_ids: np.ndarray  # (B, T) int64
    targets: np.ndarray  # (B, T) int64: the next token, or IGNORE_INDEX where there is no loss
    target_kinds: np.ndarray  # (B, T) int64: the kind of each target (0 where there is no loss)
    position_ids: np.ndarray | None  # (B, T) int64, restarting at 0 per sample; None = 0..T-1


class RowSource(Protocol):
    """Anything the loop trains on: a fixed number of rows of seq_len tokens, fetched by index."""

    num_rows: int
    seq_len: int
    kind_names: dict[int, str]

    def batch(self, rows: np.ndarray) -> RowBatch: ...


def shift_targets(labels: np.ndarray, kinds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Targets are the labels shifted left by one; the last position has no next token.

    labels [d0 d1 t0 PAD] -> targets [d1 t0 IGN IGN]; kinds [1 1 2 0] -> target kinds [1 2 0 0]
    """
    targets = np.full_like(labels, IGNORE_INDEX)
    targets[:, :-1] = labels[:, 1:]
    target_kinds = np.zeros_like(kinds, dtype=np.int64)
    target_kinds[:, :-1] = kinds[:, 1:]
    target_kinds[targets == IGNORE_INDEX] = 0
    return targets, target_kinds


def positions_from_segments(segments: np.ndarray) -> np.ndarray:
    """Position ids that restart at every change of segment (a sample boundary).

    segments [0 0 0 1 1 P P] -> positions [0 1 2 0 1 0 1]: the start of each run of equal values is
    found, and each position minus the start of its run is its offset inside the sample.
    """
    n, t = segments.shape
    idx = np.broadcast_to(np.arange(t), (n, t))
    starts = np.ones_like(segments, dtype=bool)
    starts[:, 1:] = segments[:, 1:] != segments[:, :-1]
    run_start = np.maximum.accumulate(np.where(starts, idx, 0), axis=1)
    return (idx - run_start).astype(np.int64)


class PackedData:
    """The rows of a PACK_DIR, memory-mapped shard by shard (any row readable without loading a file)."""

    def __init__(self, pack_dir: str | Path, *, block_attention: bool = False) -> None:
        self.path = Path(pack_dir)
        self.index = read_pack_index(self.path)
        self.seq_len = int(self.index["seq_len"])
        self.vocab_size = int(self.index["vocab_size"])
        self.block_attention = block_attention
        self.kind_names = dict(LOSS_KINDS)
        self._tokens, self._kinds, self._segments = [], [], []
        for shard in self.index["shards"]:
            name, n = shard["name"], int(shard["rows"])
            self._tokens.append(open_part(self.path, name, "tokens", rows=n, seq_len=self.seq_len))
            self._kinds.append(open_part(self.path, name, "kinds", rows=n, seq_len=self.seq_len))
            if block_attention:
                self._segments.append(open_part(self.path, name, "segments", rows=n, seq_len=self.seq_len))
        rows = [len(t) for t in self._tokens]
        self.num_rows = int(sum(rows))
        if self.num_rows != int(self.index.get("num_rows", self.num_rows)):
            raise ArtifactError(
                f"{self.path}/index.json says num_rows={self.index['num_rows']} "
                f"but the shards hold {self.num_rows}"
            )
        if self.num_rows == 0:
            raise InputError(f"{self.path} holds no rows; pack some data first")
        self._offsets = np.cumsum([0, *rows])

    def _gather(self, arrays: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
        shard_of = np.searchsorted(self._offsets, rows, side="right") - 1
        out = np.empty((len(rows), self.seq_len), dtype=arrays[0].dtype)
        for s in np.unique(shard_of):
            where = np.nonzero(shard_of == s)[0]
            out[where] = arrays[s][rows[where] - self._offsets[s]]
        return out

    def batch(self, rows: np.ndarray) -> RowBatch:
        tokens = self._gather(self._tokens, rows).astype(np.int64)
        kinds = self._gather(self._kinds, rows)
        if tokens.max(initial=0) >= self.vocab_size:
            bad = int(rows[np.nonzero(tokens.max(axis=1) >= self.vocab_size)[0][0]])
            raise ArtifactError(
                f"{self.path}: row {bad} holds a token id >= vocab_size {self.vocab_size} from index.json"
            )
        labels = np.where(kinds == KIND_PAD, IGNORE_INDEX, tokens)
        targets, target_kinds = shift_targets(labels, kinds)
        positions = None
        if self.block_attention:
            segments = self._gather(self._segments, rows)
            positions = positions_from_segments(segments)
            # A target in the next sample is predicted from a position that cannot see it: no loss there.
            boundary = np.zeros_like(targets, dtype=bool)
            boundary[:, :-1] = positions[:, 1:] == 0
            targets[boundary] = IGNORE_INDEX
            target_kinds[boundary] = 0
        return RowBatch(input_ids=tokens, targets=targets, target_kinds=target_kinds, position_ids=positions)


class RowOrder:
    """Stream position -> row index: epoch e is a permutation of all rows seeded by (seed, e)."""

    def __init__(self, num_rows: int, *, seed: int, shuffle: bool) -> None:
        self.num_rows, self.seed, self.shuffle = num_rows, seed, shuffle
        self._cache: dict[int, np.ndarray] = {}

    def _epoch(self, epoch: int) -> np.ndarray:
        if epoch not in self._cache:
            if len(self._cache) > 2:
                self._cache.clear()
            if self.shuffle:
                perm = np.random.default_rng([self.seed, epoch]).permutation(self.num_rows)
            else:
                perm = np.arange(self.num_rows)
            self._cache[epoch] = perm
        return self._cache[epoch]

    def rows(self, start: int, count: int) -> np.ndarray:
        """Rows at stream positions [start, start+count), crossing epoch boundaries as needed."""
        pos = np.arange(start, start + count)
        epochs, offsets = np.divmod(pos, self.num_rows)
        out = np.empty(count, dtype=np.int64)
        for e in np.unique(epochs):
            sel = epochs == e
            out[sel] = self._epoch(int(e))[offsets[sel]]
        return out
