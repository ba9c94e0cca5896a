"""pack's input by byte position: `--executor ray`'s units, and checkpoints that a resumed pack seeks to.

A plain JSONL file is cut every --unit-bytes bytes; a unit holds the lines that *start* in its range (a
reader seeks to the range, drops the line in progress, and reads while a line starts before the end),
so every line belongs to exactly one unit whatever the cuts. A compressed, Parquet or remote file cannot
be entered in the middle: it is one unit. `count_unit` gives a unit's lines and items (non-blank lines,
as formats.compression.read_lines counts them), so that from these O(units) numbers alone each unit's
first input position and first line number are known; `read_unit` then yields exactly the
(line number, raw line) pairs `record_file_lines` yields for that stretch of the file.

A `Checkpoint` says where the input stands after an item: (file number, byte offset after its line, next
line number). Commits save it (stage.py), so that a resumed pack of plain local record files, on either
executor, seeks to it instead of reading the items it had consumed again (`RecordFiles`, `plan_units`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpt.formats.compression import BOM
from tpt.formats.reading import BadLine, RecordLine, parse_line, record_file_lines
from tpt.storage import as_path, is_remote

Checkpoint = tuple[int, int, int]
"""(file number among the record files, byte offset after an item's line, the next line's number)."""


@dataclass(frozen=True, slots=True)
class UnitSpec:
    """A stretch of one record file: bytes [start, end) of a plain file, or the whole file (end -1)."""

    file: str
    start: int
    end: int
    number: int = 0
    """The file's number among the record files (for checkpoints)."""


def seekable(path: Any) -> bool:
    """A plain record file on this machine's file system (not a URL): it can be entered at a byte offset."""
    return not is_remote(path) and not path.name.lower().endswith((".gz", ".zst", ".parquet"))


def plan_units(files: Sequence[Any], unit_bytes: int, at: Checkpoint | None = None) -> list[UnitSpec]:
    """The units of the files, in input order, `unit_bytes` (--unit-bytes) of a plain file each; from
    checkpoint `at` on when one is given (its file is plain)."""
    units = []
    first, offset = (at[0], at[1]) if at else (0, 0)
    for k in range(first, len(files)):
        path = files[k]
        if not seekable(path):
            units.append(UnitSpec(str(path), 0, -1, k))
            continue
        size = path.stat().st_size
        begin = offset if k == first else 0
        cuts = range(begin, max(size, begin + 1), unit_bytes)
        units.extend(UnitSpec(str(path), s, min(s + unit_bytes, size), k) for s in cuts)
    return units


def _range_lines(spec: UnitSpec) -> Iterator[tuple[int, bytes]]:
    """(offset after it, raw line with its newline) of the lines that start in the unit's byte range."""
    with open(spec.file, "rb") as f:
        if spec.start > 0:
            f.seek(spec.start - 1)
            f.readline()  # the end of the line in progress (just b"\n" when the range starts a line)
        at = f.tell()
        while at < spec.end:
            raw = f.readline()
            if not raw:
                return
            at += len(raw)
            yield at, raw


def count_unit(spec: UnitSpec) -> tuple[int, int]:
    """(lines, items) of the unit."""
    if spec.end < 0:
        # Its line count does not matter: no unit follows it in its file.
        return 0, sum(1 for _ in record_file_lines(as_path(spec.file)))
    lines = items = 0
    for _, raw in _range_lines(spec):
        lines += 1
        if spec.start == 0 and lines == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        if not raw.isspace():
            items += 1
    return lines, items


def read_unit(spec: UnitSpec, first_line: int) -> Iterator[tuple[int, bytes, int]]:
    """(line number, raw line, offset after it: -1 in a whole-file unit) of the unit's non-blank lines;
    its first line is number `first_line`."""
    if spec.end < 0:
        for number, raw in record_file_lines(as_path(spec.file)):
            yield number, raw, -1
        return
    for number, (after, raw) in enumerate(_range_lines(spec), start=first_line):
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        if not raw.isspace():
            yield number, raw, after


class RecordFiles:
    """The items of plain local record files, as formats.reading.read_records gives them, from a
    checkpoint on; `checkpoint()` is where the stream stands after the last item it gave."""

    def __init__(self, files: list[Path], at: Checkpoint | None = None) -> None:
        self.files = files
        self.at: Checkpoint = at or (0, 0, 1)

    def checkpoint(self) -> Checkpoint:
        return self.at

    def __iter__(self) -> Iterator[RecordLine | BadLine]:
        first, offset, line = self.at
        for k in range(first, len(self.files)):
            path = self.files[k]
            name, source = str(path), path.name.split(".")[0]
            for number, raw, after in read_unit(UnitSpec(name, offset, path.stat().st_size, k), line):
                self.at = (k, after, number + 1)
                yield parse_line(raw, name, number, source)
            offset, line = 0, 1
