"""Augmented records as Parquet columns: schema from the record class, lossless back to the JSONL line."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pyarrow.parquet as pq

from tpt.formats.parquet import JSON_COLUMNS_KEY, lines_to_parquet, parquet_to_lines, schema
from tpt.formats.records import AugmentedRecord, ControlTokens, Provenance, RecordInput, columns


def _record(i: int, **changes) -> AugmentedRecord:
    rec = AugmentedRecord(
        id=f"d{i}" if i % 2 else i, text=f"document {i} é", thinking="a thought", finish_reason="stop",
        stopped_by="</think>", thinking_closed=True, thinking_method="tags", doc_tokens=2, doc_truncated=False,
        prompt_tokens=9, completion_tokens=3, source="c", meta={"lang": "en", "n": [1, 2]},
        input=RecordInput(file="c.jsonl", line=i + 1, index=i),
        provenance=Provenance(backend="x", model=None, template="paper", template_hash="h",
                              sampling={"temperature": 0.6, "top_p": 1.0}, seed=None, attempts=1),
    )  # fmt: skip
    return dataclasses.replace(rec, **changes)


def test_columns_follow_the_record_class():
    sch = schema()
    assert sch.names == [c.name for c in columns(AugmentedRecord)]
    assert sch.field("text").type == pa.string() and sch.field("doc_tokens").type == pa.int64()
    assert sch.field("thinking_closed").type == pa.bool_()
    assert (
        pa.types.is_struct(sch.field("input").type)
        and sch.field("input").type.field("index").type == pa.int64()
    )
    assert set(sch.metadata[JSON_COLUMNS_KEY].decode().split(",")) >= {"id", "meta", "provenance.sampling"}


def test_a_shard_round_trips_byte_for_byte():
    recs = [
        _record(0),
        _record(1, control_tokens=ControlTokens(action="neutralized", found={"<think>": 2})),
        _record(2, duplicate_of=0, finish_reason=None),
    ]
    data = b"".join(r.to_line().encode() + b"\n" for r in recs)
    parquet = lines_to_parquet(data)
    table = pq.read_table(pa.BufferReader(parquet))
    assert table.num_rows == 3 and table.column("text").to_pylist() == [r.text for r in recs]
    assert table.column("input").to_pylist()[2]["index"] == 2  # a struct column, not a JSON blob
    assert parquet_to_lines(parquet) == data
