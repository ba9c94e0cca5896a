"""Read record lines (`tpt augment` output, `tpt validate` output, or plain JSONL) as a stream.

This is the lenient read that validate, pack and the tokenizer share: a line needs only a non-empty
`text` (and, if present, a string `thinking`), so a plain JSONL corpus reads too; the full augmented
record with all its keys is `records.AugmentedRecord`. A line that cannot become a record is not
dropped: it comes out as a `BadLine` with a reason, so that the caller can count it and write it to its
rejected/skipped file. Text follows the augment stage's
rules (corpus.py): a byte order mark at the start of a file is skipped, a line that is not valid UTF-8
is `invalid_utf8` (nothing is replaced) and one holding a lone surrogate is `unencodable_text`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpt.core.errors import InputError
from tpt.formats.compression import read_lines
from tpt.formats.records import AugmentedRecord, Failure
from tpt.formats.text import SURROGATE_ESCAPE, readable_id, unencodable, utf8_detail

SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".parquet")
"""Record files: JSONL, and Parquet (`tpt augment --output-format parquet` shards, or a plain table)."""
# Files that sit beside records in tpt output directories but hold no records.
_NOT_RECORDS = ("failures.jsonl", "rejected.jsonl", "skipped.jsonl", "flagged.jsonl")


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordLine:
    """One record line, with only the fields the stages after augment read."""

    id: Any
    text: str
    thinking: str | None
    """None when the field is absent or null (the record then has no trajectory)."""
    finish_reason: str | None
    source: str
    file: str
    line: int
    raw: bytes
    """The input line as read, so kept records can be written out byte for byte."""


@dataclass(frozen=True, kw_only=True, slots=True)
class BadLine:
    """An input line that is not a usable record, and why."""

    file: str
    line: int
    id: Any
    source: str
    reason: (
        str  # malformed_json | invalid_utf8 | unencodable_text | not_an_object | missing_text | bad_thinking
    )
    detail: str
    raw: bytes


def resolve_record_files(paths: Iterable[str | Path]) -> list[Path]:
    """Turn INPUT arguments into the list of record files to read, in a fixed order.

    - a file: itself (`.jsonl`, `.jsonl.gz` or `.jsonl.zst`);
    - a `tpt validate` output directory: its `kept.jsonl`;
    - a `tpt augment` output directory: `shards/part-*.jsonl` in name order;
    - any other directory: every record file below it, sorted by path (failure, rejected and skipped
      files of tpt stages are not records and are left out).
    """
    from tpt.storage import as_path

    files: list[Path] = []
    for arg in paths:
        path = as_path(arg)  # a local path, or a URL on object storage (tpt.storage.RemotePath)
        if path.is_file():
            if not path.name.endswith(SUFFIXES):
                raise InputError(f"{path}: expected a {', '.join(SUFFIXES)} file")
            files.append(path)
        elif path.is_dir():
            files.extend(_dir_inputs(path))
        else:
            raise InputError(f"input {path} does not exist")
    return files


def _dir_inputs(path: Path) -> list[Path]:
    manifest = path / "manifest.json"
    stage = None
    if manifest.is_file():
        try:
            stage = json.loads(manifest.read_text(encoding="utf-8")).get("stage")
        except (OSError, json.JSONDecodeError, AttributeError):
            stage = None
    if stage == "validate":
        kept = path / "kept.jsonl"
        if not kept.is_file():
            raise InputError(f"{path} is a `tpt validate` directory without kept.jsonl; re-run tpt validate")
        return [kept]
    if (path / "shards").is_dir():
        found = augment_shards(path)
        if not found:
            raise InputError(f"{path}/shards holds no part-*.jsonl shards yet; has `tpt augment` run?")
        return found
    found = sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and p.name.endswith(SUFFIXES)
        and not p.name.endswith(_NOT_RECORDS)
        and not any(part.startswith(".") for part in str(p.relative_to(path)).split("/"))
    )
    if not found:
        raise InputError(f"{path} holds no {', '.join(SUFFIXES)} files")
    return found


def record_file_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, JSON line) of a record file: JSONL (plain, .gz, .zst; blank lines skipped) or Parquet
    (row number from 1, each row as the JSONL line it was written from)."""
    if path.name.endswith(".parquet"):
        from tpt.formats.parquet import read_parquet_lines

        yield from read_parquet_lines(path)
    else:
        yield from read_lines(path)


def read_records(files: Iterable[Path]) -> Iterator[RecordLine | BadLine]:
    """Yield one item per non-blank line of each file, in order."""
    for path in files:
        name = str(path)
        default_source = path.name.split(".")[0]
        for number, raw in record_file_lines(path):
            yield parse_line(raw, name, number, default_source)


def read_augmented(files: Iterable[Path]) -> Iterator[AugmentedRecord]:
    """The records of `tpt augment` shard files, strictly: a line that is not one is an InputError
    naming file:line."""
    for path in files:
        for number, raw in record_file_lines(path):
            yield AugmentedRecord.from_line(raw, f"{path}:{number}")


def read_failures(files: Iterable[Path]) -> Iterator[Failure]:
    """The failure records of failure files, strictly."""
    for path in files:
        for number, raw in read_lines(path):
            yield Failure.from_line(raw, f"{path}:{number}")


def parse_line(raw: bytes, file: str, line: int, default_source: str) -> RecordLine | BadLine:
    """One JSONL line -> a record, or a BadLine that says what is wrong with it."""
    try:
        text = raw.decode("utf-8")  # strict: json.loads(bytes) would let encoded surrogates through
    except UnicodeDecodeError:
        # The id still names the line whenever it can be read (text.readable_id), in every bad line.
        return BadLine(file=file, line=line, id=readable_id(raw), source=default_source, reason="invalid_utf8",
                       detail=utf8_detail(raw), raw=raw)  # fmt: skip
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        return BadLine(
            file=file,
            line=line,
            id=readable_id(text),
            source=default_source,
            reason="malformed_json",
            detail=str(exc),
            raw=raw,
        )
    if not isinstance(obj, dict):
        return BadLine(
            file=file,
            line=line,
            id=None,
            source=default_source,
            reason="not_an_object",
            detail=f"a JSON {type(obj).__name__}, not an object",
            raw=raw,
        )
    source = obj.get("source")
    source = source if isinstance(source, str) and source else default_source
    if SURROGATE_ESCAPE.search(text) and (where := unencodable(obj)):
        return BadLine(file=file, line=line, id=readable_id(obj), source=source, reason="unencodable_text",
                       detail=f"{where} holds a lone surrogate, which is not Unicode text", raw=raw)  # fmt: skip
    text, thinking = obj.get("text"), obj.get("thinking")
    if not isinstance(text, str) or not text.strip():
        what = (
            "absent"
            if "text" not in obj
            else f"{type(text).__name__}"
            if not isinstance(text, str)
            else "empty"
        )
        return BadLine(
            file=file,
            line=line,
            id=obj.get("id"),
            source=source,
            reason="missing_text",
            detail=f"field 'text' is {what}",
            raw=raw,
        )
    if thinking is not None and not isinstance(thinking, str):
        return BadLine(
            file=file,
            line=line,
            id=obj.get("id"),
            source=source,
            reason="bad_thinking",
            detail=f"field 'thinking' is a {type(thinking).__name__}, not a string",
            raw=raw,
        )
    finish = obj.get("finish_reason")
    return RecordLine(
        id=obj.get("id"),
        text=text,
        thinking=thinking,
        finish_reason=finish if isinstance(finish, str) else None,
        source=source,
        file=file,
        line=line,
        raw=raw,
    )


def augment_shards(output_dir: Path) -> list[Path]:
    """The record shards of a `tpt augment` output directory, in name (= input) order: committed
    `part-K.jsonl` or `part-K.parquet` (--output-format parquet); the directory may be a URL on object
    storage, where a shard's records object exists only once the shard is committed (storage/shardfiles.py)."""
    from tpt.storage import as_path

    shards = as_path(output_dir) / "shards"
    return sorted(
        p
        for p in shards.glob("part-*")
        if (p.name.endswith(".jsonl") and not p.name.endswith(".failures.jsonl"))
        or p.name.endswith(".parquet")
    )
