"""Corpus inputs on object storage and from `datasets`: the same items, in the same order, as local files."""

from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tpt.core.errors import InputError
from tpt.formats.corpus import count_items, iter_items, resolve_inputs


def _lines(n: int, start: int = 0) -> bytes:
    return b"".join(
        json.dumps({"id": i, "text": f"document {i}"}).encode() + b"\n" for i in range(start, start + n)
    )


def test_s3_prefix_glob_and_object_read_like_local_files(s3, tmp_path):
    s3.put("corpus/a.jsonl", _lines(5))
    s3.put("corpus/sub/b.jsonl.gz", gzip.compress(_lines(4, 5)))
    table = pa.table({"id": list(range(9, 12)), "text": [f"document {i}" for i in range(9, 12)]})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=2)
    s3.put("corpus/z.parquet", sink.getvalue())
    s3.put("corpus/README.txt", b"not a corpus file")

    files = resolve_inputs(s3.url("corpus/"))
    assert [str(f) for f in files] == [
        s3.url("corpus/a.jsonl"),
        s3.url("corpus/sub/b.jsonl.gz"),
        s3.url("corpus/z.parquet"),
    ]
    items = list(iter_items(files))
    assert [it.parse()["id"] for it in items] == list(range(12))
    assert items[0].file == s3.url("corpus/a.jsonl") and items[0].line == 1
    assert count_items(files) == 12
    assert count_items(files, read_remote=False) is None  # progress does not download the corpus twice
    assert count_items(files[2:], read_remote=False) == 3  # a Parquet footer is no download
    assert [str(f) for f in resolve_inputs(s3.url("corpus/*.jsonl"))] == [s3.url("corpus/a.jsonl")]
    assert resolve_inputs([s3.url("corpus/a.jsonl"), s3.url("corpus/a.jsonl")]) == files[:1]


def test_an_empty_prefix_or_glob_is_one_line(s3):
    with pytest.raises(InputError, match="holds no .jsonl"):
        resolve_inputs(s3.url("nothing/"))
    with pytest.raises(InputError, match="matches no object"):
        resolve_inputs(s3.url("nothing/*.jsonl"))


def test_datasets_save_to_disk_directory_and_arrow_files(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = {"id": list(range(30)), "text": [f"document {i}" for i in range(30)]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "ds"), num_shards=3)
    files = resolve_inputs(tmp_path / "ds")
    assert [f.suffix for f in files] == [".arrow"] * 3
    assert [it.parse()["id"] for it in iter_items(files)] == rows["id"]
    assert count_items(files) == 30
    # the Arrow random-access file format too
    with (
        pa.OSFile(str(tmp_path / "f.arrow"), "wb") as sink,
        pa.ipc.new_file(sink, pa.table(rows).schema) as w,
    ):
        w.write_table(pa.table(rows))
    assert [it.parse()["text"] for it in iter_items([tmp_path / "f.arrow"])] == rows["text"]
    (tmp_path / "bad.arrow").write_bytes(b"not arrow")
    with pytest.raises(InputError, match="not a readable Arrow IPC file"):
        list(iter_items([tmp_path / "bad.arrow"]))


def test_datasets_directory_on_s3(s3, tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"text": ["a", "b", "c"]}).save_to_disk(str(tmp_path / "ds"))
    for f in (tmp_path / "ds").iterdir():
        s3.put(f"ds/{f.name}", f.read_bytes())
    assert [it.parse()["text"] for it in iter_items(resolve_inputs(s3.url("ds")))] == ["a", "b", "c"]
