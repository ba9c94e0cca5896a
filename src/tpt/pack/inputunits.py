"""`tpt pack --executor ray`'s input units: byte ranges of the record files, each read by a Ray worker.

A plain JSONL file is cut every --unit-bytes bytes; a unit holds the lines that *start* in its range (a
reader seeks to the range, drops the line in progress, and reads while a line starts before the end),
so every line belongs to exactly one unit whatever the cuts. A compressed or Parquet file cannot be
entered in the middle: it is one unit. `count_unit` gives a unit's lines and items (non-blank lines,
as formats.compression.read_lines counts them), so that from these O(units) numbers alone each unit's
first input position and first line number are known; `read_unit` then yields exactly the
(line number, raw line) pairs `record_file_lines` yields for that stretch of the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tpt.formats.compression import BOM
from tpt.formats.reading import record_file_lines


@dataclass(frozen=True, slots=True)
class UnitSpec:
    """A stretch of one record file: bytes [start, end) of a plain file, or the whole file (end -1)."""

    file: str
    start: int
    end: int


def plan_units(files: list[Path], unit_bytes: int) -> list[UnitSpec]:
    """The units of the files, in input order: `unit_bytes` (--unit-bytes) of a plain file each."""
    units = []
    for path in files:
        if not _seekable(path):
            units.append(UnitSpec(str(path), 0, -1))
            continue
        size = path.stat().st_size
        units.extend(
            UnitSpec(str(path), s, min(s + unit_bytes, size)) for s in range(0, max(size, 1), unit_bytes)
        )
    return units


def _seekable(path: Path) -> bool:
    return not path.name.lower().endswith((".gz", ".zst", ".parquet"))


def _range_lines(spec: UnitSpec) -> Iterator[bytes]:
    """The raw lines (newline kept) that start in the unit's byte range."""
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
            yield raw


def count_unit(spec: UnitSpec) -> tuple[int, int]:
    """(lines, items) of the unit."""
    if spec.end < 0:
        # Its line count does not matter: no unit follows it in its file.
        return 0, sum(1 for _ in record_file_lines(Path(spec.file)))
    lines = items = 0
    for raw in _range_lines(spec):
        lines += 1
        if spec.start == 0 and lines == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        if not raw.isspace():
            items += 1
    return lines, items


def read_unit(spec: UnitSpec, first_line: int) -> Iterator[tuple[int, bytes]]:
    """(line number, raw line) of the unit's non-blank lines; its first line is number `first_line`."""
    if spec.end < 0:
        yield from record_file_lines(Path(spec.file))
        return
    for number, raw in enumerate(_range_lines(spec), start=first_line):
        if number == 1 and raw.startswith(BOM):
            raw = raw[len(BOM) :]
        if not raw.isspace():
            yield number, raw
