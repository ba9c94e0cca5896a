"""Read a corpus as a stream of positioned items: JSONL (plain, .gz, .zst), Parquet and Arrow (a `datasets`
`save_to_disk` directory), files, dirs or globs, local or on object storage (s3://, gs://, hf://: tpt.storage).

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
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpt.core.errors import InputError, TptError
from tpt.formats.compression import read_lines
from tpt.formats.text import SURROGATE_ESCAPE, unencodable, utf8_detail
from tpt.storage import as_path, is_remote

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json", ".json.gz", ".json.zst", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
ARROW_SUFFIXES = (".arrow",)
"""Arrow IPC files: what `datasets.Dataset.save_to_disk` writes (data-00000-of-0000N.arrow), stream or file format."""


def _is_supported(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(JSONL_SUFFIXES) or name.endswith(PARQUET_SUFFIXES) or name.endswith(ARROW_SUFFIXES)


def resolve_inputs(spec: str | os.PathLike | list) -> list[Path]:
    """Expand a file, a directory (recursively) or a glob into a sorted list of corpus files; a URL
    (s3://bucket/corpus/, gs://..., hf://datasets/...) is listed on its object store (RemotePath items)."""
    specs = spec if isinstance(spec, list | tuple) else [spec]
    files: list[Path] = []
    for s in specs:
        if is_remote(s):
            files.extend(_remote_inputs(s))
            continue
        p = as_path(s)
        if p.is_file():
            files.append(p)
        elif (saved := _saved_dataset(p)) is not None:
            files.extend(saved)
        elif p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and _is_supported(f))
            if not found:
                raise InputError(f"{p} holds no .jsonl, .jsonl.gz, .jsonl.zst, .parquet or .arrow files")
            files.extend(found)
        else:
            matches = sorted(Path(m) for m in globlib.glob(str(s), recursive=True))
            matches = [m for m in matches if m.is_file()]
            if not matches:
                raise InputError(f"input {str(s)!r} matches no file")
            files.extend(matches)
    for f in files:
        if not _is_supported(f):
            raise InputError(f"{f}: unsupported input format (expected .jsonl[.gz|.zst], .parquet or .arrow)")
    seen: set[Path] = set()
    unique = []
    for f in files:
        r = f.resolve()
        if r not in seen:
            seen.add(r)
            unique.append(f)
    return unique


def _remote_inputs(spec: Any) -> list[Any]:
    """The corpus objects of a URL: the object itself, every supported object below a prefix, or a glob."""
    from tpt.storage.errors import remote_errors

    root = as_path(spec)
    if any(c in root.url for c in "*?["):
        with remote_errors(root.url, "listing it"):
            found = root.fs.glob(root.path, detail=True)
        matches = [root._child(found[k]) for k in sorted(found) if found[k].get("type", "file") == "file"]
        if not matches:
            raise InputError(f"input {root} matches no object")
        return matches
    if root.is_file():
        return [root]
    if (saved := _saved_dataset(root)) is not None:
        return saved
    found = [f for f in root.rglob("*") if _is_supported(f)]
    if not found:
        raise InputError(
            f"{root} holds no .jsonl, .jsonl.gz, .jsonl.zst, .parquet or .arrow objects (or does not exist)"
        )
    return found


def _saved_dataset(path: Any) -> list[Any] | None:
    """The Arrow files of a `datasets` save_to_disk directory in its own order (state.json), each split
    of a saved DatasetDict in turn (dataset_dict.json); None for any other path."""
    try:
        if (path / "state.json").is_file():
            state = json.loads((path / "state.json").read_text(encoding="utf-8"))
            return [path / d["filename"] for d in state["_data_files"]]
        if (path / "dataset_dict.json").is_file():
            splits = json.loads((path / "dataset_dict.json").read_text(encoding="utf-8"))["splits"]
            return [f for split in splits for f in (_saved_dataset(path / split) or [])]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(
            f"{path}: a `datasets` save_to_disk directory with an unreadable state ({exc})"
        ) from None
    return None


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

    def parse(self) -> dict[str, object]:
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


def _parquet(path: Path) -> Any:
    import pyarrow.parquet as pq

    try:  # a remote object is read by ranges (its footer, then one row group at a time)
        return pq.ParquetFile(path.open("rb+seek") if is_remote(path) else path)
    except TptError:
        raise
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None


def _arrow_batches(path: Path) -> Iterator[Any]:
    """The record batches of an Arrow IPC file, stream format (`datasets`) or file format, one at a time."""
    import pyarrow as pa

    with path.open("rb") as f:
        try:
            if f.peek(6)[:6] == b"ARROW1":  # the random-access file format: read whole
                reader = pa.ipc.open_file(pa.BufferReader(f.read()))
                for i in range(reader.num_record_batches):
                    yield reader.get_batch(i)
                return
            yield from pa.ipc.open_stream(f)
        except pa.ArrowInvalid as exc:
            raise InputError(f"{path}: not a readable Arrow IPC file ({exc})") from None


def _iter_file(path: Path) -> Iterator[tuple[int, str | dict]]:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES) or name.endswith(ARROW_SUFFIXES):
        parquet = name.endswith(PARQUET_SUFFIXES)
        batches = _parquet(path).iter_batches(batch_size=1024) if parquet else _arrow_batches(path)
        row = 0
        for batch in batches:
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
    for i, path in enumerate(files):
        if i + 1 < len(files) and is_remote(files[i + 1]):
            from tpt.storage.readahead import prefetch

            prefetch(files[i + 1])  # its first block arrives while this file is read
        for line, raw in _iter_file(path):
            if index >= start:
                yield Item(index=index, file=str(path), line=line, raw=raw)
            index += 1


def count_items(files: list[Path], *, read_remote: bool = True) -> int | None:
    """Number of items, for progress totals (a fast pass: lines are counted, not parsed). With
    `read_remote=False`, None instead of downloading a remote corpus a second time just to count it
    (a remote Parquet file is still counted: from its footer)."""
    if not read_remote and any(is_remote(f) and not f.name.lower().endswith(PARQUET_SUFFIXES) for f in files):
        return None
    total = 0
    for path in files:
        if path.name.lower().endswith(PARQUET_SUFFIXES):
            total += _parquet(path).metadata.num_rows
        elif path.name.lower().endswith(ARROW_SUFFIXES):
            total += sum(batch.num_rows for batch in _arrow_batches(path))
        else:
            total += sum(1 for _ in read_lines(path))
    return total


def content_id(text: str) -> str:
    """A stable id derived from the content, for records that have none."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
