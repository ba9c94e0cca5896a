"""Word and word n-gram hashes of whole batches of texts, computed with numpy for the trajectory checks.

ASCII letters are lowercased, ASCII punctuation counts as a space, and a word is a maximal run of
other bytes of its UTF-8 encoding. Hashes are 64-bit and deterministic across processes (no Python
`hash` salt), so an index of evaluation-set n-grams can be cached and compared with any corpus. A
whole batch is hashed in a handful of numpy passes instead of a Python loop per word: that is what
keeps validation cheaper than tokenization (see benchmarks/pack_throughput.py).
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Polynomial hashing mod 2**64 with an odd base; the base is invertible mod 2**64, which lets a window's
# hash come from two prefix sums (see `_window_hashes`).
_BASE = 0x100000001B3  # the FNV-64 prime: odd
_BASE_INV = pow(_BASE, -1, 2**64)
_U64 = np.uint64

# One bytes.translate pass folds ASCII case and turns ASCII punctuation and whitespace into spaces
# (str.lower on every text would cost a third of the hashing; non-ASCII letters keep their case).
_TRANSLATE = bytes.maketrans(
    (string.ascii_uppercase + string.punctuation + "\t\n\r\x0b\x0c").encode("ascii"),
    (string.ascii_lowercase + " " * (len(string.punctuation) + 5)).encode("ascii"),
)
_IS_WORD_BYTE = np.ones(256, dtype=bool)
_IS_WORD_BYTE[[ord(" "), 0]] = False


@dataclass(frozen=True, slots=True)
class HashRuns:
    """Hashes of several texts, concatenated: text i owns `values[offsets[i]:offsets[i + 1]]`."""

    values: np.ndarray  # (n,) uint64
    offsets: np.ndarray  # (num_texts + 1,) int64

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)

    def owners(self) -> np.ndarray:
        """Index of the text each value belongs to, shape (n,)."""
        return np.repeat(np.arange(len(self.offsets) - 1), self.counts)

    def of(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]


class _Powers:
    """Cached arrays base**k and base**-k mod 2**64, grown on demand."""

    def __init__(self) -> None:
        self.pos = np.ones(1, dtype=_U64)
        self.neg = np.ones(1, dtype=_U64)

    def get(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if len(self.pos) < n:
            size = max(n, _CHUNK_BYTES + 1, 2 * len(self.pos))
            self.pos = np.ones(size, dtype=_U64)
            self.neg = np.ones(size, dtype=_U64)
            with np.errstate(over="ignore"):
                np.cumprod(np.full(size - 1, _BASE, dtype=_U64), out=self.pos[1:])
                np.cumprod(np.full(size - 1, _BASE_INV, dtype=_U64), out=self.neg[1:])
        return self.pos[:n], self.neg[:n]


_POWERS = _Powers()


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: spreads the bits of a polynomial hash (which alone clusters)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> _U64(30))
        x = x * _U64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> _U64(27))
        x = x * _U64(0x94D049BB133111EB)
        return x ^ (x >> _U64(31))


def _window_hashes(values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Position-independent polynomial hash of each window values[s:e], all windows at once.

    With S[i] = sum_{j<i} v[j] * B**-j, the window [s, e) hashes to (S[e] - S[s]) * B**(e-1)
    = sum_{j=s}^{e-1} v[j] * B**(e-1-j), the same value wherever the window sits.
    Example, B=10 (not odd-64, just to show the shape): v=[1,2,3], window [1,3) -> 2*10 + 3 = 23.
    """
    pos, neg = _POWERS.get(len(values) + 1)
    with np.errstate(over="ignore"):
        prefix = np.zeros(len(values) + 1, dtype=_U64)
        np.cumsum(values * neg[: len(values)], out=prefix[1:])
        return (prefix[ends] - prefix[starts]) * pos[ends - 1]


# Texts are hashed in chunks of about this many bytes, which bounds the cached power tables (16 MiB
# each) instead of regrowing them for every larger batch.
_CHUNK_BYTES = 1 << 21


def word_hashes(texts: Sequence[str]) -> HashRuns:
    """Hash every word of every text; text i's words keep their order."""
    encoded = [t.encode("utf-8", "replace") for t in texts]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    # Chunk boundaries: cut before the text where the running byte count passes each multiple.
    cuts = np.searchsorted(
        np.cumsum(lengths + 1),
        np.arange(_CHUNK_BYTES, int(lengths.sum()) + len(lengths) + 1, _CHUNK_BYTES),
        side="right",
    )
    bounds = [0, *sorted(set(int(c) for c in cuts if 0 < c < len(texts))), len(texts)]
    if len(bounds) == 2:
        return _word_hashes(encoded, lengths)
    parts = [
        _word_hashes(encoded[a:b], lengths[a:b])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        if b > a
    ]
    offsets = [np.zeros(1, dtype=np.int64)]
    base = 0
    for part in parts:
        offsets.append(part.offsets[1:] + base)
        base += len(part.values)
    return HashRuns(np.concatenate([p.values for p in parts]), np.concatenate(offsets))


def _word_hashes(encoded: Sequence[bytes], lengths: np.ndarray) -> HashRuns:
    # One space between texts, so no word spans two texts.
    buf = b" ".join(encoded).translate(_TRANSLATE)
    byte_values = np.frombuffer(buf, dtype=np.uint8)
    is_word = np.zeros(len(byte_values) + 2, dtype=np.int8)
    is_word[1:-1] = _IS_WORD_BYTE[byte_values]
    edges = np.diff(is_word)
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1)
    hashes = mix64(_window_hashes(byte_values.astype(_U64) + _U64(1), starts, ends))
    text_starts = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths + 1, out=text_starts[1:])  # byte offset where each text starts (+1 space)
    offsets = np.searchsorted(starts, text_starts, side="left")
    offsets[-1] = len(starts)
    return HashRuns(hashes, offsets.astype(np.int64))


def ngram_hashes(words: HashRuns, n: int) -> HashRuns:
    """Hash every run of n consecutive words inside each text (a text of k words has max(0, k-n+1))."""
    counts = np.maximum(words.counts - n + 1, 0)
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    # Start of every n-gram: text t contributes words.offsets[t] + 0 .. counts[t]-1.
    # Example: word offsets [0, 5, 6], n=3 -> counts [3, 0] -> starts [0, 1, 2].
    owners = np.repeat(np.arange(len(counts)), counts)
    starts = np.arange(offsets[-1], dtype=np.int64) - offsets[owners] + words.offsets[owners]
    values = mix64(_window_hashes(words.values, starts, starts + n))
    return HashRuns(values, offsets)
