"""Read a corpus as a stream of positioned items: JSONL (plain, .gz, .zst) and Parquet, files, dirs or globs.

Every item carries where it came from (file and 1-based line, or row index for Parquet) and a global index
in a deterministic order (files sorted by path, then lines in order), so a run can be split into fixed
shards and resumed by position. Lines are parsed only when asked (`Item.parse`), so skipping a finished
part of a large corpus costs a read, not a JSON decode.

Text is taken exactly as written or not at all: a UTF-8 byte order mark at the start of a file is
skipped; a line that is not valid UTF-8 is an input failure (`invalid_utf8`, with the offending bytes and
their position; nothing is silently replaced); a line whose JSON holds a lone surrogate (`"\\ud800"`),
which is no Unicode text and cannot be sent or written as UTF-8, is an input failure
(`unencodable_text`), before any request.
"""

from __future__ import annotations

import glob as globlib
import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpt.errors import InputError
from tpt.formats.compression import read_lines

# A \uD800-\uDFFF escape: only a line that holds one can parse to a lone surrogate (then it is checked).
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
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


class ItemError(ValueError):
    """Why an input item cannot become a document; `reason` is its failure reason."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Item:
    """One input line or row, not yet parsed."""

    index: int
    """Global position in the corpus stream (0-based)."""
    file: str
    line: int
    """1-based line number for JSONL, 0-based row index for Parquet."""
    raw: str | dict | bytes
    """The line (str), the Parquet row (dict), or the line's bytes when they are not valid UTF-8."""

    def parse(self) -> dict[str, Any]:
        """The record as a dict; raises ItemError (a ValueError) with a reason for a bad line."""
        if isinstance(self.raw, dict):
            return self.raw
        if isinstance(self.raw, bytes):
            raise ItemError("invalid_utf8", utf8_detail(self.raw))
        try:
            value = json.loads(self.raw)
        except json.JSONDecodeError as exc:
            raise ItemError("malformed_line", f"malformed JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(value, dict):
            raise ItemError("malformed_line", f"expected a JSON object, got {type(value).__name__}")
        if SURROGATE_ESCAPE.search(self.raw) and (where := unencodable(value)):
            raise ItemError(
                "unencodable_text",
                f"{where} holds a lone surrogate, which is not Unicode text "
                "and cannot be sent or written; fix the producer of this line",
            )
        return value


def unencodable(value: Any, path: str = "") -> str | None:
    """Where a parsed JSON value holds a string that UTF-8 cannot encode (a lone surrogate), or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"field {path or '(value)'!r} (character {exc.start})"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            if (where := unencodable(k, f"{path}.{k!s}".lstrip(".") + " (a key)")) or (
                where := unencodable(v, f"{path}.{k!s}".lstrip("."))
            ):
                return where
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if where := unencodable(v, f"{path}[{i}]"):
                return where
    return None


def utf8_detail(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.end]
        return (
            f"not valid UTF-8 at byte offset {exc.start} of the line ({bad.hex(' ')}: {exc.reason}); tpt takes text as written "
            "and replaces nothing; re-encode the file as UTF-8 (e.g. iconv -f <its encoding> -t utf-8)"
        )
    return "not valid UTF-8"


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
    for lineno, line in read_lines(path):
        try:
            yield lineno, line.decode("utf-8")
        except UnicodeDecodeError:
            yield lineno, line  # kept as bytes: Item.parse names it an invalid_utf8 failure


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
            total += sum(1 for _ in read_lines(path))
    return total


def content_id(text: str) -> str:
    """A stable id derived from the content, for records that have none."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
