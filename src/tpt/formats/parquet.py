"""Augmented records as Parquet columns (`tpt augment --output-format parquet`), schema from the record class.

The schema is derived from `records.AugmentedRecord` by `records.columns`, so a field added to the
record class is a column without an edit here:
- `str`, `int`, `float`, `bool` fields are columns of that type (nullable when the field may be None);
- a nested record (`input`, `provenance`, `control_tokens`, `loop`) is a struct column of its fields;
- a free-form value (`id`, whose JSON type varies between corpora, `meta`, `provenance.sampling`, any
  `dict`/`list`/`Any` field) is a string column holding its JSON text; the file's key-value metadata
  `tpt.json_columns` lists those columns, so that tpt reads a record back exactly as its JSONL line.
A shard is one Parquet file (`shards/part-K.parquet`) with one row group per ROW_GROUP records, written
whole at the shard's commit from the shard's lines in input order. `datasets.load_dataset("parquet",
data_files=".../shards/part-*.parquet")` reads it; so do pandas, DuckDB, Spark and Polars.
"""

from __future__ import annotations

import io
import json
import types
import typing
from collections.abc import Iterator, Mapping
from typing import Any, Union

from tpt.formats.records import AugmentedRecord, JsonRecord, columns

ROW_GROUP = 1024
JSON_COLUMNS_KEY = b"tpt.json_columns"
RECORD_CLASS_KEY = b"tpt.record_class"
SUFFIX = ".parquet"


def _strip_none(tp: Any) -> tuple[Any, bool]:
    """(the type without None, whether None was allowed)."""
    if typing.get_origin(tp) is Union or isinstance(tp, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return (args[0] if len(args) == 1 else Any), len(args) < len(typing.get_args(tp))
    return tp, False


def _arrow_type(tp: Any, path: str, json_columns: list[str]) -> Any:
    import pyarrow as pa

    scalar = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}
    if tp in scalar:
        return scalar[tp]
    if isinstance(tp, type) and issubclass(tp, JsonRecord):
        return pa.struct(
            [
                pa.field(c.name, _arrow_type(_strip_none(c.type)[0], f"{path}.{c.name}", json_columns))
                for c in columns(tp)
            ]
        )
    json_columns.append(path)
    return pa.string()


def schema(cls: type = AugmentedRecord) -> Any:
    """The Arrow schema of a record class, its JSON-text columns named in the metadata."""
    import pyarrow as pa

    json_columns: list[str] = []
    fields = [
        pa.field(c.name, _arrow_type(_strip_none(c.type)[0], c.name, json_columns)) for c in columns(cls)
    ]
    meta = {JSON_COLUMNS_KEY: ",".join(json_columns).encode(), RECORD_CLASS_KEY: cls.__name__.encode()}
    return pa.schema(fields, metadata=meta)


def _encode(value: Any, cls: type, prefix: str, json_columns: set[str]) -> dict[str, object]:
    out: dict[str, object] = {}
    for c in columns(cls):
        path = f"{prefix}{c.name}"
        v = value.get(c.name) if isinstance(value, dict) else None
        tp = _strip_none(c.type)[0]
        if path in json_columns:
            out[c.name] = (
                None if v is None and c.name not in (value or {}) else json.dumps(v, ensure_ascii=False)
            )
        elif isinstance(tp, type) and issubclass(tp, JsonRecord):
            out[c.name] = None if v is None else _encode(v, tp, f"{path}.", json_columns)
        else:
            out[c.name] = v
    return out


def _decode(
    row: Mapping[str, object] | None, cls: type, prefix: str, json_columns: set[str]
) -> dict[str, object] | None:
    if row is None:
        return None
    out: dict[str, object] = {}
    for c in columns(cls):
        path = f"{prefix}{c.name}"
        v = row.get(c.name)
        tp = _strip_none(c.type)[0]
        if path in json_columns:
            v = None if v is None else json.loads(v)
        elif isinstance(tp, type) and issubclass(tp, JsonRecord):
            v = _decode(v, tp, f"{path}.", json_columns)
        if v is None and c.omitted_when_none:
            continue
        out[c.name] = v
    return out


def lines_to_parquet(data: bytes, cls: type = AugmentedRecord) -> bytes:
    """A shard's JSONL lines (in order) as one Parquet file's bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sch = schema(cls)
    json_columns = set(sch.metadata[JSON_COLUMNS_KEY].decode().split(",")) - {""}
    rows = [_encode(json.loads(line), cls, "", json_columns) for line in data.splitlines() if line.strip()]
    table = pa.Table.from_pylist(rows, schema=sch)
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=ROW_GROUP, compression="zstd")
    return sink.getvalue()


def iter_rows(source: Any, cls: type = AugmentedRecord) -> Iterator[dict[str, object]]:
    """The records of a Parquet shard (a path, a file object or bytes) as the JSON objects of its
    JSONL form, one row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(pa.BufferReader(source) if isinstance(source, bytes) else source)
    meta = pf.schema_arrow.metadata or {}
    json_columns = set(meta.get(JSON_COLUMNS_KEY, b"").decode().split(",")) - {""}
    ours = RECORD_CLASS_KEY in meta  # else a plain table: its rows as they are
    for batch in pf.iter_batches(batch_size=ROW_GROUP):
        for row in batch.to_pylist():
            yield _decode(row, cls, "", json_columns) if ours else row  # type: ignore[misc]


def read_parquet_lines(path: Any) -> Iterator[tuple[int, bytes]]:
    """(1-based row number, the row as a JSON line) of a Parquet file: a tpt shard decoded exactly as its
    JSONL line, any other table's rows as they are (a remote file is read by ranges, row group by row
    group)."""
    from tpt.core.errors import InputError, TptError
    from tpt.storage import is_remote

    try:
        source = path.open("rb+seek") if is_remote(path) else str(path)
        for number, row in enumerate(iter_rows(source), start=1):
            yield number, (json.dumps(row, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    except TptError:
        raise
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None


def parquet_to_lines(data: bytes, cls: type = AugmentedRecord) -> bytes:
    """A Parquet shard back as its JSONL lines (a committed shard reopened for appending)."""
    return b"".join((json.dumps(r, ensure_ascii=False) + "\n").encode("utf-8") for r in iter_rows(data, cls))
