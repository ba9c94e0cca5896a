"""Augment's outputs read by `datasets`: the JSONL shards and the Parquet shards (--output-format parquet),
every record seen; a Parquet output on S3 resumed past an earlier --limit (a committed Parquet shard
reopened) still holds every document once."""

from __future__ import annotations

import json

import pytest

import tpt.augment.stage as stage
from tpt.augment.backends.base import GenerationResult, SamplingParams
from tpt.augment.executors import LocalExecutor
from tpt.formats.reading import RecordLine, augment_shards, read_augmented, read_records, resolve_record_files

N = 23


class ReverseTeacher:
    """A teacher that thinks the document backwards (no model runs in a unit test)."""

    name = "reverse"
    model_id = "reverse-teacher"

    def truncate(self, texts, max_tokens):
        return [(t, len(t.split()), False) for t in texts]

    def generate(self, requests, sampling):
        for req in requests:
            doc = req.meta["text"]
            yield GenerationResult(key=req.key, text=f"<think>\n{doc[::-1]}\n</think>\nanswer",
                                   prompt_tokens=7, completion_tokens=len(doc.split()) + 2)  # fmt: skip

    def close(self):
        pass


def corpus(path):
    rows = [{"id": f"d{i}" if i % 3 else i, "text": f"document {i} é", "lang": "en"} for i in range(N)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(inputs, output, **options):
    cfg = stage.AugmentConfig(inputs=[str(inputs)], output=output, backend="reverse", progress=False,
                              sampling=SamplingParams(max_tokens=64, seed=1), shard_size=5, **options)  # fmt: skip
    return stage.run(cfg, executor=LocalExecutor(lambda cfg: ReverseTeacher()))


def test_datasets_loads_the_jsonl_and_the_parquet_outputs_and_sees_every_record(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    src = corpus(tmp_path / "c.jsonl")
    run(src, tmp_path / "jsonl")
    run(src, tmp_path / "parquet", output_format="parquet")
    parquet_shards = augment_shards(tmp_path / "parquet")
    assert [p.suffix for p in parquet_shards] == [".parquet"] * 5
    assert not list((tmp_path / "parquet" / "shards").glob("*.partial"))
    # tpt reads both back as the same records, line for line
    jsonl = list(read_augmented(augment_shards(tmp_path / "jsonl")))
    assert [r.to_json() for r in read_augmented(parquet_shards)] == [r.to_json() for r in jsonl]
    assert [x.raw for x in read_records(resolve_record_files([tmp_path / "parquet"]))] == [
        x.raw for x in read_records(resolve_record_files([tmp_path / "jsonl"]))
    ]
    cache = str(tmp_path / "hf-cache")
    from_jsonl = datasets.load_dataset(
        "json", data_files=str(tmp_path / "jsonl/shards/part-*[0-9].jsonl"), split="train", cache_dir=cache
    )
    from_parquet = datasets.load_dataset(
        "parquet", data_files=str(tmp_path / "parquet/shards/part-*.parquet"), split="train", cache_dir=cache
    )
    assert from_jsonl.num_rows == from_parquet.num_rows == N
    assert sorted(from_parquet["text"]) == sorted(from_jsonl["text"]) == sorted(r.text for r in jsonl)
    assert [row["index"] for row in from_parquet["input"]] == list(range(N))  # a struct column
    assert from_parquet.features["doc_tokens"].dtype == "int64"
    assert [json.loads(i) for i in from_parquet["id"]] == [r.id for r in jsonl]  # free-form: JSON text


def test_a_parquet_output_on_s3_resumed_past_a_limit_holds_every_document_once(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("TPT_STAGING_DIR", str(tmp_path / "staging"))
    src = corpus(tmp_path / "c.jsonl")
    s3.put("corpus/c.jsonl", src.read_bytes())
    out = s3.url("aug")
    first = run(s3.url("corpus/"), out, output_format="parquet", limit=12)  # shard 2 ends early
    assert (first["records"] if isinstance(first, dict) else first.records) == 12
    assert "aug/shards/part-00000002.parquet" in s3.keys("aug")
    run(s3.url("corpus/"), out, output_format="parquet")  # reopens shard 2: back to JSONL lines, on
    lines = list(read_records(resolve_record_files([out])))
    assert all(isinstance(x, RecordLine) for x in lines)
    assert [json.loads(x.raw)["input"]["index"] for x in lines] == list(range(N))  # once each, in order
    assert [k for k in s3.keys("aug/shards") if k.endswith(".parquet")] == [
        f"aug/shards/part-{k:08d}.parquet" for k in range(5)
    ]
