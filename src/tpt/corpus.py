"""Read a corpus as a stream of positioned items: JSONL (plain, .gz, .zst) and Parquet, files, dirs or globs.

Every item carries where it came from (file and 1-based line, or row index for Parquet) and a global index
in a deterministic order (files sorted by path, then lines in order), so a run can be split into fixed
shards and resumed by position. Lines are parsed only when asked (`Item.parse`), so skipping a finished
part of a large corpus costs a read, not a JSON decode.
"""

from __future__ import annotations

import glob as globlib
import gzip
import hashlib
import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpt.errors import InputError

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json", ".json.gz", ".json.zst", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)


def _is_supported(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(JSONL_SUFFIXES) or name.endswith(PARQUET_SUFFIXES)


def resolve_inputs(spec: str | os.PathLike | list) -> list[Path]:
    """Expand a file, a directory (recursively) or a glob into a sorted list of corpus files."""
    specs = spec if isinstance(spec, list | tuple) else [spec]
    files: list[Path] = []
    for s in specs:
        p = Path(s).expanduser()
        if p.is_file():
            files.append(p)
        elif p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and _is_supported(f))
            if not found:
                raise InputError(f"{p} holds no .jsonl, .jsonl.gz, .jsonl.zst or .parquet files")
            files.extend(found)
        else:
            matches = sorted(Path(m) for m in globlib.glob(str(s), recursive=True))
            matches = [m for m in matches if m.is_file()]
            if not matches:
                raise InputError(f"input {str(s)!r} matches no file")
            files.extend(matches)
    for f in files:
        if not _is_supported(f):
            raise InputError(f"{f}: unsupported input format (expected .jsonl[.gz|.zst] or .parquet)")
    seen: set[Path] = set()
    unique = []
    for f in files:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(f)
    return unique


@dataclass(frozen=True, slots=True)
class Item:
    """One input line or row, not yet parsed."""

    index: int
    """Global position in the corpus stream (0-based)."""
    file: str
    line: int
    """1-based line number for JSONL, 0-based row index for Parquet."""
    raw: str | dict

    def parse(self) -> dict[str, Any]:
        """The record as a dict; raises ValueError with a reason for a malformed line."""
        if isinstance(self.raw, dict):
            return self.raw
        try:
            value = json.loads(self.raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"malformed JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(value, dict):
            raise ValueError(f"expected a JSON object, got {type(value).__name__}")
        return value


def _open_text(path: Path) -> io.TextIOBase:
    name = path.name.lower()
    if name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    if name.endswith(".zst"):
        import zstandard

        raw = open(path, "rb")  # noqa: SIM115 - closed through the wrapper
        return io.TextIOWrapper(
            zstandard.ZstdDecompressor().stream_reader(raw, closefd=True), encoding="utf-8", errors="replace"
        )
    return open(path, encoding="utf-8", errors="replace")  # noqa: SIM115


def _iter_file(path: Path) -> Iterator[tuple[int, str | dict]]:
    if path.name.lower().endswith(PARQUET_SUFFIXES):
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path)
        except Exception as exc:  # pyarrow raises several types for a bad file
            raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
        row = 0
        for batch in pf.iter_batches(batch_size=1024):
            for rec in batch.to_pylist():
                yield row, rec
                row += 1
        return
    with _open_text(path) as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                yield lineno, line


def iter_items(files: list[Path], *, start: int = 0) -> Iterator[Item]:
    """All items of all files in order; blank lines are not items."""
    index = 0
    for path in files:
        for line, raw in _iter_file(path):
            if index >= start:
                yield Item(index=index, file=str(path), line=line, raw=raw)
            index += 1


def count_items(files: list[Path]) -> int:
    """Number of items, for progress totals (a fast pass: lines are counted, not parsed)."""
    total = 0
    for path in files:
        if path.name.lower().endswith(PARQUET_SUFFIXES):
            import pyarrow.parquet as pq

            total += pq.ParquetFile(path).metadata.num_rows
        else:
            with _open_text(path) as f:
                total += sum(1 for line in f if line.strip())
    return total


def content_id(text: str) -> str:
    """A stable id derived from the content, for records that have none."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
