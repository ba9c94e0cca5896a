"""The shuffled control's trajectories on disk, between its two passes over the input.

`tpt pack --control shuffled` reads its input twice. Pass 1 validates the records exactly as the TPT
arm does and tokenizes only their thinking; every augmented sample (a slot) is written here:

- `thinking.bin`: the thinking ids of each kept record, once, in input order (the pack's token dtype);
- `slots.bin`: per slot, in input order, the index of its bucket key (uint32);
- `key-NNNNN.bin`: per bucket key, one (offset, length, record ordinal) int64 triple per slot of that
  key, in arrival order (its rank).

Between the passes the counts per key give the derangement (controls.Derangement: nothing per item in
memory). Pass 2 validates again, tokenizes only the documents, and takes each slot's partner
trajectory from here with two positioned reads. Memory holds the key table and a write buffer per key
(at most BUFFER entries each), never a per-record table, so it does not grow with the corpus; the disk
holds the thinking ids once (2 or 4 bytes a token) plus 28 bytes a slot, removed when the pack ends.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tpt.core.errors import InputError
from tpt.pack.controls import BucketKey, Derangement, thinking_bucket

BUFFER = 4096
_ENTRY = np.dtype([("offset", "<i8"), ("length", "<i8"), ("ordinal", "<i8")])


class TrajectorySpill:
    """Written in pass 1 (`add`, `close_pass1`), read in pass 2 (`partner_thinking`)."""

    def __init__(self, directory: Path, dtype: np.dtype) -> None:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(parents=True)
        self.dir = directory
        self.dtype = np.dtype(dtype)
        self.keys: list[BucketKey] = []
        self._key_ids: dict[BucketKey, int] = {}
        self.counts: list[int] = []
        self._pending: list[list[tuple[int, int, int]]] = []
        self._thinking = open(directory / "thinking.bin", "wb")
        self._slots = open(directory / "slots.bin", "wb")
        self._written = 0  # tokens in thinking.bin
        self._fds: dict[str, int] = {}
        self._plan: Derangement | None = None

    # --- pass 1 --------------------------------------------------------------------------------
    def add(self, ordinal: int, source: str, ids: np.ndarray, copies: int) -> None:
        """A kept record whose thinking `ids` fills `copies` augmented samples (layers 0..copies-1)."""
        if copies <= 0:
            return
        offset, length = self._written, len(ids)
        self._thinking.write(np.asarray(ids, dtype=self.dtype).tobytes())
        self._written += length
        bucket = thinking_bucket(length)
        slots = []
        for layer in range(copies):
            k = self._key(BucketKey(source, bucket, layer))
            self._pending[k].append((offset, length, ordinal))
            self.counts[k] += 1
            if len(self._pending[k]) >= BUFFER:
                self._flush(k)
            slots.append(k)
        self._slots.write(np.asarray(slots, dtype=np.uint32).tobytes())

    def _key(self, key: BucketKey) -> int:
        k = self._key_ids.get(key)
        if k is None:
            k = self._key_ids[key] = len(self.keys)
            self.keys.append(key)
            self.counts.append(0)
            self._pending.append([])
        return k

    def _flush(self, k: int) -> None:
        with open(self.dir / f"key-{k:05d}.bin", "ab") as f:
            f.write(np.asarray(self._pending[k], dtype=_ENTRY).tobytes())
        self._pending[k].clear()

    def close_pass1(self, seed: int) -> Derangement:
        for k in range(len(self.keys)):
            if self._pending[k]:
                self._flush(k)
        self._thinking.close()
        self._slots.close()
        counts = dict(zip(self.keys, self.counts, strict=True))
        self._plan = Derangement(counts, seed, lambda key, rank: int(self._entry(key, rank)["ordinal"]))
        self._slot_reader = open(self.dir / "slots.bin", "rb")
        self._ranks = [0] * len(self.keys)
        return self._plan

    # --- pass 2 --------------------------------------------------------------------------------
    def cursor(self) -> tuple[int, list[int]]:
        """Where pass 2 stands (slots read, rank reached per bucket), for a resumable commit."""
        return self._slot_reader.tell(), list(self._ranks)

    def seek(self, cursor: tuple[int, list[int]]) -> None:
        """Continue pass 2 from a cursor() of an earlier run over the same spill."""
        self._slot_reader.seek(cursor[0])
        self._ranks = list(cursor[1])

    def _fd(self, name: str) -> int:
        fd = self._fds.get(name)
        if fd is None:
            fd = self._fds[name] = os.open(self.dir / name, os.O_RDONLY)
        return fd

    def _entry(self, key: BucketKey, rank: int) -> np.void:
        k = self._key_ids[key]
        raw = os.pread(self._fd(f"key-{k:05d}.bin"), _ENTRY.itemsize, rank * _ENTRY.itemsize)
        return np.frombuffer(raw, dtype=_ENTRY)[0]

    def _ids(self, offset: int, length: int) -> np.ndarray:
        size = self.dtype.itemsize
        raw = os.pread(self._fd("thinking.bin"), length * size, offset * size)
        return np.frombuffer(raw, dtype=self.dtype).astype(np.uint32)

    def partner_thinking(self, ordinals: Sequence[int], copies: Sequence[int]) -> list[list[np.ndarray]]:
        """Pass 2: per record (its input ordinal and augmented copies, in pass 1's order), the partner
        trajectory of each of its augmented samples."""
        assert self._plan is not None
        total = sum(copies)
        raw = self._slot_reader.read(4 * total)
        if len(raw) != 4 * total:
            raise _changed("more augmented samples than in the first pass")
        slot_keys = np.frombuffer(raw, dtype=np.uint32).tolist()
        # Each slot's rank within its key, then its partner, batched per key.
        by_key: dict[int, list[int]] = {}
        slot_ranks = []
        for s, k in enumerate(slot_keys):
            slot_ranks.append(self._ranks[k])
            self._ranks[k] += 1
            by_key.setdefault(k, []).append(s)
        owners = np.repeat(np.asarray(ordinals, dtype=np.int64), np.asarray(copies, dtype=np.int64))
        found: list[np.ndarray | None] = [None] * total
        for k, slots in by_key.items():
            key = self.keys[k]
            first = self._entry(key, slot_ranks[slots[0]])
            if int(first["ordinal"]) != int(owners[slots[0]]):
                raise _changed(f"record {int(owners[slots[0]])} is not where the first pass saw it")
            ranks = np.asarray([slot_ranks[s] for s in slots], dtype=np.int64)
            for pkey, pranks, where in self._plan.partners(key, ranks):
                for w, r in zip(where.tolist(), pranks.tolist(), strict=True):
                    entry = self._entry(pkey, r)
                    if int(entry["ordinal"]) == int(owners[slots[w]]):
                        raise AssertionError(
                            "internal error: the shuffled control paired a document with itself"
                        )
                    found[slots[w]] = self._ids(int(entry["offset"]), int(entry["length"]))
        out, s = [], 0
        for c in copies:
            out.append(found[s : s + c])
            s += c
        return out  # type: ignore[return-value]

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        for f in (self._thinking, self._slots, getattr(self, "_slot_reader", None)):
            if f is not None:
                f.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def finish(self) -> None:
        """After pass 2: every slot of pass 1 must have been used, then the files go."""
        leftover = self._slot_reader.read(4)
        self.close()
        if leftover:
            raise _changed("fewer augmented samples than in the first pass")


def _changed(why: str) -> InputError:
    return InputError(
        f"the input changed between the two passes of --control shuffled ({why}); pack again from "
        "inputs that nothing writes to while tpt pack reads them"
    )
