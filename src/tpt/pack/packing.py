"""Pack token samples into fixed-length rows, with the kind of every token and per-row sample segments.

Two policies:
- `stream` (default; the usual pre-training packing): samples are laid end to end and the stream is cut
  every seq_len tokens, so a sample may continue in the next row; only the last row is padded.
- `whole`: a sample that fits in a row is never cut: when it does not fit in what is left of the
  current row, the row is padded and the sample starts the next one. A sample longer than a row is
  still split across rows (from where the current row stands), never dropped.
Segments number the sample pieces within a row (0, 1, 2, ...), so a trainer can reset positions or
mask attention at every change of value; padding carries PAD_SEGMENT.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tpt.core.errors import ConfigError
from tpt.formats.packfile import KIND_PAD, PAD_SEGMENT

MAX_SEQ_LEN = 65535  # segments are uint16, and a row holds at most seq_len pieces
POLICIES = ("stream", "whole")


@dataclass(frozen=True, slots=True)
class Sample:
    """One training sample: token ids and the runs of kinds that type them."""

    ids: np.ndarray  # (n,) uint32
    runs: tuple[tuple[int, int], ...]  # (kind, length), lengths sum to n
    source: int  # index into the run's source table
    augmented: bool


@dataclass(frozen=True, slots=True)
class Rows:
    """A block of packed rows, all shape (num_rows, seq_len)."""

    tokens: np.ndarray  # uint32
    kinds: np.ndarray  # uint8
    segments: np.ndarray  # uint16

    def __len__(self) -> int:
        return len(self.tokens)


class RowPacker:
    """Packs samples as they come; holds back only the unfinished last row."""

    def __init__(self, seq_len: int, policy: str, pad_id: int) -> None:
        if not 1 <= seq_len <= MAX_SEQ_LEN:
            raise ConfigError(f"--seq-len must be in [1, {MAX_SEQ_LEN}], got {seq_len}")
        if policy not in POLICIES:
            raise ConfigError(f"--packing must be one of {', '.join(POLICIES)}, got {policy!r}")
        self.seq_len, self.policy, self.pad_id = seq_len, policy, pad_id
        self.split_samples = 0
        self.pad_tokens = 0
        self._tail_tokens = np.empty(0, dtype=np.uint32)
        self._tail_kinds = np.empty(0, dtype=np.uint8)
        self._tail_starts = np.empty(0, dtype=bool)

    def add(self, samples: Sequence[Sample]) -> Rows:
        """Append samples; return the rows they completed (possibly none)."""
        L = self.seq_len
        tail = len(self._tail_tokens)
        if not samples:
            return self._empty()
        lengths = np.fromiter((len(s.ids) for s in samples), dtype=np.int64, count=len(samples))
        starts = self._place(lengths, tail)
        ends = starts + lengths
        self.split_samples += int(np.count_nonzero((lengths > 0) & (starts // L != (ends - 1) // L)))
        total = int(ends[-1])
        tokens = np.full(total, self.pad_id, dtype=np.uint32)
        kinds = np.zeros(total, dtype=np.uint8)
        is_start = np.zeros(total, dtype=bool)
        tokens[:tail], kinds[:tail], is_start[:tail] = (
            self._tail_tokens,
            self._tail_kinds,
            self._tail_starts,
        )
        flat_ids = np.concatenate([s.ids for s in samples])
        run_kinds = np.fromiter((k for s in samples for k, _ in s.runs), dtype=np.uint8)
        run_lengths = np.fromiter((n for s in samples for _, n in s.runs), dtype=np.int64)
        flat_kinds = np.repeat(run_kinds, run_lengths)
        # Where each sample's tokens go: its start, plus the position inside the sample.
        # Example: lengths [2, 3], starts [0, 4] -> dest [0 1 4 5 6] (2..3 stay padding).
        first = np.zeros(len(lengths), dtype=np.int64)
        np.cumsum(lengths[:-1], out=first[1:])
        dest = np.repeat(starts - first, lengths) + np.arange(len(flat_ids))
        tokens[dest], kinds[dest] = flat_ids, flat_kinds
        is_start[starts[lengths > 0]] = True
        full = total // L * L
        self._tail_tokens, self._tail_kinds, self._tail_starts = (
            tokens[full:],
            kinds[full:],
            is_start[full:],
        )
        return self._rows(tokens[:full], kinds[:full], is_start[:full])

    def finish(self) -> Rows:
        """The last, padded row (or nothing when the stream ended on a row boundary)."""
        tail = len(self._tail_tokens)
        if tail == 0:
            return self._empty()
        pad = self.seq_len - tail
        tokens = np.concatenate([self._tail_tokens, np.full(pad, self.pad_id, dtype=np.uint32)])
        kinds = np.concatenate([self._tail_kinds, np.zeros(pad, dtype=np.uint8)])
        is_start = np.concatenate([self._tail_starts, np.zeros(pad, dtype=bool)])
        self._tail_tokens = self._tail_tokens[:0]
        self._tail_kinds = self._tail_kinds[:0]
        self._tail_starts = self._tail_starts[:0]
        return self._rows(tokens, kinds, is_start)

    def _place(self, lengths: np.ndarray, tail: int) -> np.ndarray:
        """Start position of each sample in the stream that begins with the unfinished row."""
        if self.policy == "stream":
            starts = np.empty(len(lengths), dtype=np.int64)
            starts[0] = tail
            np.cumsum(lengths[:-1], out=starts[1:])
            starts[1:] += tail
            return starts
        L, pos, starts = self.seq_len, tail, []
        for n in lengths.tolist():
            room = L - pos % L
            if n <= L and n > room:
                pos += room  # pad the rest of this row; the sample starts the next one whole
            starts.append(pos)
            pos += n
        return np.asarray(starts, dtype=np.int64)

    def _rows(self, tokens: np.ndarray, kinds: np.ndarray, is_start: np.ndarray) -> Rows:
        L = self.seq_len
        shape = (len(tokens) // L, L)
        tokens, kinds = tokens.reshape(shape), kinds.reshape(shape)
        boundary = is_start.reshape(shape).copy()
        boundary[:, 0] = True  # a row always starts piece 0, also mid-sample
        segments = (np.cumsum(boundary, axis=1, dtype=np.int64) - 1).astype(np.uint16)
        pad = kinds == KIND_PAD
        segments[pad] = PAD_SEGMENT
        self.pad_tokens += int(np.count_nonzero(pad))
        return Rows(tokens, kinds, segments)

    def _empty(self) -> Rows:
        L = self.seq_len
        return Rows(np.empty((0, L), np.uint32), np.empty((0, L), np.uint8), np.empty((0, L), np.uint16))
