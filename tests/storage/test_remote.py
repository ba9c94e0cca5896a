"""RemotePath against a real S3-compatible server: listing, streaming reads with read-ahead, objects."""

from __future__ import annotations

import gzip
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from tpt.storage import as_path, is_remote, redact
from tpt.storage.readahead import ReadAhead
from tpt.storage.remote import RemotePath, StorageError


def test_as_path_keeps_local_paths_local(tmp_path):
    assert as_path(str(tmp_path)) == tmp_path
    assert as_path(f"file://{tmp_path}") == tmp_path
    assert isinstance(as_path("s3://bkt/x"), RemotePath)
    assert is_remote("gs://b/x") and not is_remote("file:///x") and not is_remote("a/b")
    assert redact("s3://KEY:SECRET@bkt/x") == "s3://bkt/x"


def test_listing_and_globs(s3):
    for key in ("c/a.jsonl", "c/sub/b.jsonl.gz", "c/notes.txt", "d/x.jsonl"):
        s3.put(key, b"{}\n")
    root = as_path(s3.url("c"))
    assert root.is_dir() and not root.is_file()
    assert [p.name for p in root.rglob("*")] == ["a.jsonl", "notes.txt", "b.jsonl.gz"] or sorted(
        p.name for p in root.rglob("*")
    ) == ["a.jsonl", "b.jsonl.gz", "notes.txt"]
    assert [str(p) for p in root.glob("**/*.jsonl*")] == [s3.url("c/a.jsonl"), s3.url("c/sub/b.jsonl.gz")]
    a = root / "a.jsonl"
    assert a.is_file() and a.size == 3 and a.read_bytes() == b"{}\n"
    a.write_bytes(b"new\n")
    assert a.read_text() == "new\n"
    a.unlink()
    assert not a.exists()
    a.unlink(missing_ok=True)


def test_read_ahead_streams_in_blocks_with_bounded_memory(s3):
    data = b"".join(json.dumps({"i": i, "text": "x" * 50}).encode() + b"\n" for i in range(20_000))
    s3.put("big.jsonl", data)
    raw = ReadAhead(as_path(s3.url("big.jsonl")), block=64 * 1024, depth=3)
    got = io.BufferedReader(raw).read()
    assert got == data
    assert raw.requests == -(-len(data) // (64 * 1024))  # one ranged GET a block, no block twice
    # never more than `depth` blocks requested ahead of the reader
    raw2 = ReadAhead(as_path(s3.url("big.jsonl")), block=64 * 1024, depth=3)
    buf = bytearray(10)
    raw2.readinto(buf)
    assert len(raw2._pending) <= 3 and raw2.requests <= 4
    raw2.close()


def test_the_next_object_s_first_block_is_fetched_ahead(s3):
    from tpt.storage.readahead import prefetch

    s3.put("a.jsonl", b"x" * 1000)
    s3.put("b.jsonl", b"y" * 1000)
    b = as_path(s3.url("b.jsonl"))
    b._size = 1000
    prefetch(b)
    reader = ReadAhead(b)
    assert reader.read(2000) == b"y" * 1000 and reader.requests == 0  # served by the prefetched block


def test_compressed_and_parquet_objects_read_whole(s3):
    from tpt.formats.compression import open_bytes

    lines = [json.dumps({"text": f"doc {i}"}).encode() + b"\n" for i in range(100)]
    s3.put("c/a.jsonl.gz", gzip.compress(b"".join(lines)))
    s3.put("c/b.jsonl.zst", zstandard.ZstdCompressor().compress(b"".join(lines)))
    for name in ("a.jsonl.gz", "b.jsonl.zst"):
        with open_bytes(as_path(s3.url(f"c/{name}"))) as f:
            assert list(f) == lines
    table = pa.table({"text": [f"doc {i}" for i in range(1000)]})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=100)
    s3.put("c/p.parquet", sink.getvalue())
    pf = pq.ParquetFile(as_path(s3.url("c/p.parquet")).open("rb+seek"))
    assert pf.num_row_groups == 10
    assert [r["text"] for b in pf.iter_batches(batch_size=64) for r in b.to_pylist()] == table.column(
        "text"
    ).to_pylist()


def test_missing_object_and_bucket_are_one_line(s3):
    from tpt.core.machine_errors import describe

    with pytest.raises(FileNotFoundError) as exc:  # as pathlib raises it: callers handle both alike
        as_path(s3.url("nope.jsonl")).read_bytes()
    assert describe(exc.value).startswith(f"no such file or directory (ENOENT) at {s3.url('nope.jsonl')}: ")
    with pytest.raises((StorageError, FileNotFoundError)) as exc:
        as_path("s3://no-such-bucket-tpt/x.jsonl").read_bytes()
    assert "s3://no-such-bucket-tpt/x.jsonl" in str(exc.value) and "\n" not in str(exc.value)


def test_a_changed_environment_gets_its_own_filesystem(s3, monkeypatch):
    from tpt.storage.filesystems import filesystem

    fs, path = filesystem(s3.url("x/y.jsonl"))
    assert path == f"{s3.bucket}/x/y.jsonl" and filesystem(s3.url("z"))[0] is fs  # reused
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # another store: not the old client
    assert filesystem(s3.url("x/y.jsonl"))[0] is not fs
