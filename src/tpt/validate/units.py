"""validate's units of work: one per input file, each committed exactly once, so a killed run resumes.

A unit's output lies in VAL_DIR/parts/ until the run ends: `NNNNN.kept.jsonl`, `NNNNN.rejected.jsonl`
(its lines, exactly as the merged files will hold them), `NNNNN.ids.npy` (the 63-bit hash and input
position of each id it read, in order, so a resumed run rebuilds the duplicate-id registry without
reading the unit again) and, last, `NNNNN.json`: its counts. The unit is committed when its json exists;
the data files are fsynced and renamed into place before it is written (POSIX rename is atomic), the
same order as augment's shard commit (storage/localshards.py). A committed unit is never judged again. A
unit with data files but no json was cut off: it is judged again from its first line, overwriting them.

`parts/plan.json` binds the parts to one config and one list of input files; a re-run with anything
else starts the parts afresh. When every unit is committed the run merges them: kept.jsonl and
rejected.jsonl are the parts concatenated in unit order, summary.json is the parts' counts added up;
then parts/ is removed.

On Ray (ray_units.py) a unit is judged by a worker, in two passes: first each uncommitted unit is
indexed (`NNNNN.index.npz`: its record count and the (hash, position within the unit) of each id it
reads), so the run knows every unit's first input position and which of its ids came before, with no
document passing through the driver; then each is judged and committed as above, by a worker. A worker
stages under names of its own (`.NNNNN.kept.jsonl.<token>.tmp`), so a worker Ray gave up on but that
still runs cannot write into the files of the one redoing its unit; both would commit the same bytes.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tpt.core import partsdir
from tpt.core.artifacts import read_json, write_json
from tpt.core.jsontypes import JSONObject

PARTS = "parts"
PLAN = partsdir.PLAN
OUTPUTS = ("kept", "rejected")


class UnitBook:
    """The committed units of one validate output directory (local disk)."""

    def __init__(self, directory: Path, plan: JSONObject, *, token: str = "") -> None:
        self.dir = Path(directory)
        self.token = token
        partsdir.bind(self.dir, plan)

    @classmethod
    def reopen(cls, directory: Path, token: str) -> UnitBook:
        """The book a worker writes into: the driver has already bound it to its plan."""
        book = cls.__new__(cls)
        book.dir, book.token = Path(directory), token
        return book

    def path(self, unit: int, kind: str) -> Path:
        suffix = {
            "kept": "kept.jsonl",
            "rejected": "rejected.jsonl",
            "ids": "ids.npy",
            "facts": "json",
            "index": "index.npz",
        }[kind]
        return self.dir / f"{unit:05d}.{suffix}"

    def staging(self, unit: int, kind: str) -> Path:
        final = self.path(unit, kind)
        return final.with_name(f".{final.name}.{self.token}.tmp" if self.token else f".{final.name}.tmp")

    def committed(self, unit: int) -> JSONObject | None:
        """The unit's counts when it is committed, else None."""
        path = self.path(unit, "facts")
        return read_json(path) if path.is_file() else None

    def ids(self, unit: int) -> np.ndarray:
        """(hash, position) rows of the ids a committed unit read, in read order."""
        return np.load(self.path(unit, "ids"), allow_pickle=False)

    def index(self, unit: int) -> tuple[int, np.ndarray] | None:
        """(records, (hash, position in the unit) rows) of an indexed unit (ray_units.py), else None."""
        path = self.path(unit, "index")
        if not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            return int(data["records"]), data["ids"]

    def write_index(self, unit: int, records: int, ids: np.ndarray) -> None:
        staged = self.staging(unit, "index")
        with open(staged, "wb") as f:
            np.savez(f, records=np.int64(records), ids=ids)
            f.flush()
            os.fsync(f.fileno())
        os.replace(staged, self.path(unit, "index"))

    def commit(self, unit: int, facts: JSONObject, ids: np.ndarray) -> None:
        """Make the unit's staged kept/rejected files and its ids final, then write its counts."""
        with open(self.staging(unit, "ids"), "wb") as f:
            np.save(f, ids, allow_pickle=False)
        for kind in (*OUTPUTS, "ids"):
            staged = self.staging(unit, kind)
            with open(staged, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(staged, self.path(unit, kind))
        write_json(self.path(unit, "facts"), facts)  # the commit point

    def merge(self, out: Path, units: int) -> None:
        """kept.jsonl and rejected.jsonl in `out`: the units' files in unit order, copied by the kernel
        (the process that merges, a Ray driver included, never reads the records into its memory)."""
        for kind in OUTPUTS:
            # a writer's own temporary name: a retried merge task and the one Ray thought dead both
            # write the same bytes, each to its own file, each renamed into place whole
            tmp = out / (f".{kind}.jsonl.{self.token}.tmp" if self.token else f".{kind}.jsonl.tmp")
            with open(tmp, "wb") as dst:
                for unit in range(units):
                    with open(self.path(unit, kind), "rb") as src:
                        append_file(src, dst)
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, out / f"{kind}.jsonl")
            # the temporary files of merges killed before their rename (a SIGKILLed worker's own name
            # is never reused); one still running renames identical bytes, or fails on its missing file
            for stale in out.glob(f".{kind}.jsonl.*.tmp"):
                stale.unlink(missing_ok=True)


def writer_token() -> str:
    """This process's name for its temporary files (host and pid): two writers never share one."""
    return f"{os.uname().nodename}-{os.getpid()}"


def merge_parts(book_dir: str, out: str, units: int, own_names: bool = False) -> None:
    """UnitBook.merge by paths (a Ray task's arguments: validate's merge runs on a worker on Ray);
    `own_names`: temporary files under this process's name (a Ray task that may run twice)."""
    UnitBook.reopen(Path(book_dir), writer_token() if own_names else "").merge(Path(out), units)


def remove_parts(book_dir: str) -> None:
    """Remove the parts directory, after summary.json is written."""
    shutil.rmtree(book_dir, ignore_errors=True)


def append_file(src: BinaryIO, dst: BinaryIO) -> None:
    """Append all of `src` to `dst` with copy_file_range (in the kernel, no bytes through this process);
    a plain buffered copy where the filesystem or platform cannot (EXDEV, ENOSYS, EINVAL...)."""
    dst.flush()
    size = os.fstat(src.fileno()).st_size
    offset, out = 0, dst.tell()
    try:
        while offset < size:
            n = os.copy_file_range(src.fileno(), dst.fileno(), size - offset, offset, out + offset)
            if n == 0:
                break
            offset += n
    except (AttributeError, OSError):
        pass
    dst.seek(out + offset)
    src.seek(offset)
    shutil.copyfileobj(src, dst, 1 << 20)  # the rest, if the kernel copied less (or nothing)
