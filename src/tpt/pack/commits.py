"""pack's commits: the run's state saved with its output shards, so a killed `tpt pack` resumes.

The same book, layout and commit order as validate's units (validate/units.py; a stage does not import
another, so the few lines of plan handling are repeated here):
PACK_DIR/parts/ holds `plan.json` (the run's fingerprinted config; a re-run with another one starts
afresh) and, per commit n, `NNNNN.ids.npy` (the (hash, position) of each id first seen since the commit
before, so a resumed run rebuilds the duplicate-id registry without reading those records again),
`NNNNN.megatron.npy` (the Megatron sequence lengths of the samples packed since the commit before),
`NNNNN.stats.json` (the token accounting added since the commit before: stats.PackStats.part; a resumed
run adds the parts up),
`NNNNN.state.pkl` (only the last commit's is kept: the shuffle buffer, the packer's unfinished row, the
shard writer's row count in its open shard, the --control shuffled spill's cursor, the input checkpoint) and,
last, `NNNNN.json`: the commit point, with the input position reached and the byte lengths of
skipped.jsonl, flagged.jsonl and the Megatron .bin at that moment.

A commit is made at the end of a batch that completed at least one output shard; the shards are already
renamed into place (formats/packfile.py), so a commit covers every shard before it. Shards written after
the last commit were cut off: a resumed run deletes them and writes them again. The state is a pickle
that only this run's code reads back, from its own output directory, bound to the plan.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from tpt.core import partsdir
from tpt.core.artifacts import read_json, write_json
from tpt.core.duplicate_ids import DuplicateCheck, IdRegistry
from tpt.core.jsontypes import JSONObject
from tpt.formats.packwriter import ShardWriter
from tpt.pack.mixing import ShuffleBuffer
from tpt.pack.packing import RowPacker, Sample
from tpt.pack.stats import PackStats

PARTS = "parts"
PLAN = partsdir.PLAN


@dataclass(slots=True)
class PackState:
    """Everything pack carries from one input record to the next, as of the last batch accepted."""

    items: int
    """Input items (records and bad lines) consumed: a resumed run skips this many."""
    shuffle: ShuffleBuffer[Sample]
    packer: RowPacker
    shards: ShardWriter
    stats: PackStats
    """Not in the pickle: a resumed run merges it from the commits' stats parts (CommitBook.stats)."""
    duplicate_ids: int
    """Repeated ids among the items consumed."""
    spill_cursor: tuple[int, list[int]] | None = None
    """--control shuffled: TrajectorySpill.cursor() (slots read, rank per bucket)."""
    input_at: tuple[int, int, int] | None = None
    """Where the input stands after item `items - 1` (inputunits.Checkpoint): a resumed run seeks there;
    None when an input cannot be entered at a byte offset (it skips `items` items instead)."""


class JournaledIds(IdRegistry):
    """An IdRegistry that remembers the ids it registers, for the next commit's ids part."""

    def __init__(self) -> None:
        super().__init__()
        self.journal: list[tuple[int, int]] = []

    def add(self, h: int, index: int) -> int:
        first = super().add(h, index)
        if first == index:
            self.journal.append((h, index))
        return first

    def take(self) -> list[tuple[int, int]]:
        journal, self.journal = self.journal, []
        return journal


class CommitBook:
    """The commits of one pack output directory (local disk)."""

    def __init__(self, directory: Path, plan: JSONObject) -> None:
        self.dir = Path(directory)
        partsdir.bind(self.dir, plan)

    def staging(self, unit: int, kind: str) -> Path:
        final = self.path(unit, kind)
        return final.with_name(f".{final.name}.tmp")

    def committed(self, unit: int) -> JSONObject | None:
        """The commit's facts when it is made, else None."""
        path = self.path(unit, "facts")
        return read_json(path) if path.is_file() else None

    def ids(self, unit: int) -> np.ndarray:
        return np.load(self.path(unit, "ids"), allow_pickle=False)

    def remove(self) -> None:
        # The plan first: a removal cut off half way leaves commits no plan binds, which the next run
        # clears instead of resuming from.
        (self.dir / PLAN).unlink(missing_ok=True)
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, unit: int, kind: str) -> Path:
        suffix = {"ids": "ids.npy", "megatron": "megatron.npy", "stats": "stats.json", "state": "state.pkl",
                  "facts": "json"}[kind]  # fmt: skip
        return self.dir / f"{unit:05d}.{suffix}"

    def last(self) -> int:
        """The number of commits made (commits are numbered from 0 and made in order)."""
        n = 0
        while self.committed(n) is not None:
            n += 1
        return n

    def commit(
        self, unit: int, facts: JSONObject, ids: np.ndarray, megatron: np.ndarray, state: PackState
    ) -> None:
        """Write the commit's parts, fsynced and renamed into place, then its facts: the commit point."""
        stats = json.dumps(state.stats.part(), sort_keys=True).encode()
        without_stats = replace(state, stats=None)
        for kind, write in (
            ("ids", lambda f: np.save(f, ids, allow_pickle=False)),
            ("megatron", lambda f: np.save(f, megatron, allow_pickle=False)),
            ("stats", lambda f: f.write(stats)),
            ("state", lambda f: pickle.dump(without_stats, f, protocol=pickle.HIGHEST_PROTOCOL)),
        ):
            staged = self.staging(unit, kind)
            with open(staged, "wb") as f:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(staged, self.path(unit, kind))
        write_json(self.path(unit, "facts"), facts)  # the commit point
        if unit > 0:  # only the last state is ever read back
            self.path(unit - 1, "state").unlink(missing_ok=True)

    def state(self, unit: int) -> PackState:
        """The state of commit `unit`, its accounting merged from the stats parts of commits 0..unit."""
        with open(self.path(unit, "state"), "rb") as f:
            state = pickle.load(f)
        if not isinstance(state, PackState):
            raise ValueError(f"{self.path(unit, 'state')} is not a pack state")
        state.stats = PackStats.merged(read_json(self.path(u, "stats")) for u in range(unit + 1))
        return state

    def megatron_lengths(self, units: int) -> np.ndarray:
        """The Megatron sequence lengths of the first `units` commits, in packed order."""
        parts = [np.load(self.path(u, "megatron"), allow_pickle=False) for u in range(units)]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int32)

    def restore_ids(self, units: int, dups: DuplicateCheck) -> None:
        """Register the ids of the first `units` commits again, in read order (not journaled)."""
        for unit in range(units):
            for h, position in self.ids(unit).tolist():
                IdRegistry.add(dups.ids, h, position)
