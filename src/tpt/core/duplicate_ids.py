"""Documents that share an id: found in one pass, reported, and kept or dropped by `--duplicate-ids`.

`keep-both` (default): every document is kept; each one whose id was seen before is reported (summary,
failures/skipped files) and its record says `duplicate_of` (the input index of the first).
`keep-first`: the later ones are dropped as `duplicate_id`, named with the first's input index.

An id is compared by a 64-bit hash of its canonical JSON (1 and "1" differ), so memory is 16 bytes per
distinct id: sorted numpy runs, merged as they grow (an LSM tree in miniature), plus a dict of the most
recent ones. Two different ids collide with probability ~n^2 / 2^65: 3e-8 for ten million documents.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tpt.core.artifacts import canonical_json
from tpt.core.errors import ConfigError

POLICIES = ("keep-both", "keep-first")
_RECENT = 1 << 12  # ids held in a dict before they go to a sorted run (~0.5 MB)


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ConfigError(f"--duplicate-ids must be one of {', '.join(POLICIES)}, got {policy!r}")
    return policy


def id_hash(value: Any) -> int:
    """A 63-bit hash of an id's canonical JSON (fits an int64 and a JSON number)."""
    digest = hashlib.blake2b(
        canonical_json(value).encode("utf-8", "backslashreplace"), digest_size=8
    ).digest()
    return int.from_bytes(digest, "little") >> 1


class IdRegistry:
    """id hash -> input index of its first occurrence."""

    def __init__(self) -> None:
        self._recent: dict[int, int] = {}
        self._runs: list[tuple[Any, Any]] = []  # (sorted int64 hashes, int64 indices)

    def __len__(self) -> int:
        return len(self._recent) + sum(len(h) for h, _ in self._runs)

    def first(self, h: int) -> int | None:
        """The index registered for hash h, or None."""
        found = self._recent.get(h)
        if found is not None:
            return found
        import numpy as np

        for hashes, indices in self._runs:
            pos = int(np.searchsorted(hashes, h))
            if pos < len(hashes) and int(hashes[pos]) == h:
                return int(indices[pos])
        return None

    def add(self, h: int, index: int) -> int:
        """Register h at index unless it is known; returns the index it is registered at."""
        found = self.first(h)
        if found is not None:
            return found
        self._recent[h] = index
        if len(self._recent) >= _RECENT:
            self._flush()
        return index

    def _flush(self) -> None:
        import numpy as np

        hashes = np.fromiter(self._recent.keys(), dtype=np.int64, count=len(self._recent))
        indices = np.fromiter(self._recent.values(), dtype=np.int64, count=len(self._recent))
        self._recent = {}
        self._runs.append(_sorted(hashes, indices))
        # Merge while the newest run is at least as large as the one before: O(log n) runs.
        while len(self._runs) >= 2 and len(self._runs[-1][0]) >= len(self._runs[-2][0]):
            (h2, i2), (h1, i1) = self._runs.pop(), self._runs.pop()
            self._runs.append(_sorted(np.concatenate([h1, h2]), np.concatenate([i1, i2])))


def _sorted(hashes: Any, indices: Any) -> tuple[Any, Any]:
    order = hashes.argsort(kind="stable")
    return hashes[order], indices[order]


class DuplicateCheck:
    """Duplicate ids in a stream of records (`tpt validate`, `tpt pack`): the same rule as the augment
    stage, over the records as read (before any check judges them), positions 0-based in read order."""

    def __init__(self, policy: str = "keep-both") -> None:
        self.policy = check_policy(policy)
        self.ids = IdRegistry()
        self.count = 0

    @property
    def drops(self) -> bool:
        return self.policy == "keep-first"

    def check(self, doc_id: Any, position: int) -> str | None:
        """None when the record's id is new (or it has none); else the detail that reports it."""
        if doc_id is None:
            return None
        first = self.ids.add(id_hash(doc_id), position)
        if first == position:
            return None
        self.count += 1
        action = (
            "dropped (--duplicate-ids keep-first)" if self.drops else "kept both (--duplicate-ids keep-both)"
        )
        return f"the id of input item {first} again; {action}"
