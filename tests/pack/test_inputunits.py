"""--executor ray's input units (pack/inputunits.py): however a record file is cut into byte ranges, the
units' lines, numbered from the counts alone, are exactly the file's lines as a local pack reads them."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tpt.formats.compression import BOM
from tpt.formats.reading import record_file_lines
from tpt.pack.inputunits import count_unit, plan_units, read_unit


def read_all(files: list[Path], unit_bytes: int) -> tuple[list[tuple[str, int, bytes]], int]:
    """Every unit's lines, each unit numbered from the line counts of the units before it in its file."""
    got, items, line, last = [], 0, 1, None
    for unit in plan_units(files, unit_bytes):
        if unit.file != last:
            line, last = 1, unit.file
        lines, n = count_unit(unit)
        found = list(read_unit(unit, line))
        assert len(found) == n
        got += [(unit.file, number, raw) for number, raw, _ in found]
        items, line = items + n, line + lines
    return got, items


@pytest.mark.parametrize("unit_bytes", [1, 2, 3, 5, 7, 16, 40, 1 << 20])
def test_units_tile_the_files_exactly(tmp_path: Path, unit_bytes: int) -> None:
    plain = tmp_path / "a.jsonl"
    # A byte order mark, blank and whitespace-only lines, CRLF, a long line, no newline at the end.
    plain.write_bytes(BOM + b'{"id": 1}\n\n  \n{"id": 2}\r\n' + b'{"x": "' + b"y" * 50 + b'"}\n\n{"id": 3}')
    packed = tmp_path / "b.jsonl.gz"
    packed.write_bytes(gzip.compress(b'{"id": 4}\n\n{"id": 5}\n'))
    empty = tmp_path / "c.jsonl"
    empty.write_bytes(b"")
    files = [plain, packed, empty]
    want = [(str(f), n, raw) for f in files for n, raw in record_file_lines(f)]
    got, items = read_all(files, unit_bytes)
    assert got == want and items == len(want) == 6
    assert len(plan_units([packed], unit_bytes)) == 1  # a compressed file is never entered mid-way
