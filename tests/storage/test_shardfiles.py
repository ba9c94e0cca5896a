"""The shard book on object storage (storage.shardfiles.RemoteShardFiles) against a real S3 server:
partials stay local, commits are whole objects, a resume here or on another machine is exact, and the
requests a resume makes do not grow one round trip per shard."""

from __future__ import annotations

import json

from tpt.augment.shards import ShardBook
from tpt.storage import as_path
from tpt.storage.shardfiles import RemoteShardFiles


def record(i: int) -> dict:
    return {
        "id": f"d{i}",
        "text": "t",
        "completion_tokens": 1,
        "input": {"file": "c", "line": i + 1, "index": i},
    }


def book_on(s3, staging, size=4) -> tuple[ShardBook, RemoteShardFiles]:
    files = RemoteShardFiles(as_path(s3.url("aug/shards")), staging)
    return ShardBook(None, size, files=files), files


def test_commits_are_objects_partials_stay_local_and_a_resume_is_exact(s3, tmp_path):
    book, _ = book_on(s3, tmp_path / "node-a")
    for i in (1, 0, 3, 2, 5, 4, 7, 6, 9, 8):  # out of order, as a concurrent backend delivers them
        book.write(i, record(i), failure=False)
    book.set_expected(0, 4)
    book.set_expected(1, 4)
    book.close()
    keys = s3.keys("aug/shards")
    assert keys == [f"aug/shards/part-0000000{k}.{kind}" for k in (0, 1)
                    for kind in ("failures.jsonl", "jsonl", "stats.json")]  # fmt: skip
    assert [json.loads(x)["input"]["index"] for x in s3.get("aug/shards/part-00000001.jsonl").splitlines()] == [
        4, 5, 6, 7,
    ]  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "node-a").iterdir()) == [
        "part-00000002.failures.jsonl.partial", "part-00000002.jsonl.partial",
    ]  # fmt: skip

    same, _ = book_on(s3, tmp_path / "node-a")  # the same machine: the partial shard continues
    assert same.committed == {0: 4, 1: 4} and same.shard(2).done_indices == {8, 9}
    same.close()
    other, _ = book_on(s3, tmp_path / "node-b")  # another machine: shard 2 is redone, 0 and 1 are kept
    assert other.committed == {0: 4, 1: 4} and other.shard(2).done_indices == set()
    for i in (8, 9):
        other.write(i, record(i), failure=False)
    other.set_expected(2, 2)
    assert other.committed == {0: 4, 1: 4, 2: 2}
    other.close()


def test_an_interrupted_commit_is_settled_and_redone_once(s3, tmp_path):
    book, files = book_on(s3, tmp_path / "node-a")
    for i in range(4):
        book.write(i, record(i), failure=False)
    book.close()
    # a commit killed after its stats and failures uploads, before the records object (the commit point)
    sh = book.shard(0)
    files.write("part-00000000.stats.json", b'{"shard": 0, "items": 4}')
    files.write("part-00000000.failures.jsonl", b"")
    sh.close()
    again, _ = book_on(s3, tmp_path / "node-a")
    assert again.committed == {} and "aug/shards/part-00000000.stats.json" not in s3.keys("aug/shards")
    again.set_expected(0, 4)  # every item already has its outcome in the partial: it commits
    assert again.committed == {0: 4}
    lines = s3.get("aug/shards/part-00000000.jsonl").splitlines()
    assert [json.loads(x)["input"]["index"] for x in lines] == [0, 1, 2, 3]  # once each


def test_a_resume_reads_the_sidecars_in_batches(s3, tmp_path):
    book, _ = book_on(s3, tmp_path / "node-a", size=1)
    for i in range(40):
        book.write(i, record(i), failure=False)
        book.set_expected(i, 1)
    book.close()
    resumed, files = book_on(s3, tmp_path / "node-b", size=1)
    assert resumed.committed == {i: 1 for i in range(40)}
    assert files.requests <= 3  # one listing and two batches of 32, not 40 reads and 40 HEADs
    stats = resumed.summary_stats()
    assert stats.records == 40
