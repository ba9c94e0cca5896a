"""The shard book on its own: `pending` does the resume bookkeeping, and every file operation goes
through the book's ShardFiles (here an in-memory one: the directory it is given is never touched)."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

from tpt.augment.shards import ShardBook


@dataclass(frozen=True)
class Item:
    index: int


class MemoryFiles:
    """ShardFiles held in a dict, with the operations it was asked for."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.ops: list[str] = []

    def names(self, pattern: str) -> list[str]:
        from fnmatch import fnmatch

        return sorted(n for n in self.data if fnmatch(n, pattern))

    def exists(self, name: str) -> bool:
        return name in self.data

    def read(self, name: str) -> bytes:
        return self.data[name]

    def write(self, name: str, data: bytes) -> None:
        self.ops.append(f"write {name}")
        self.data[name] = data

    def append(self, name: str) -> io.BytesIO:
        files = self

        class Handle(io.BytesIO):
            def flush(self) -> None:
                files.data[name] = files.data.get(name, b"") + self.getvalue()
                self.seek(0)
                self.truncate()

        self.data.setdefault(name, b"")
        return Handle()

    def truncate(self, name: str, size: int) -> None:
        self.data[name] = self.data[name][:size]

    def close(self, handle, *, sync: bool) -> None:
        handle.flush()
        handle.close()

    def commit(self, partial: str, name: str, parts: list[tuple[int, int]]) -> None:
        self.ops.append(f"commit {name}")
        data = self.data.pop(partial)
        self.data[name] = b"".join(data[a:b] for a, b in parts)

    def rename(self, src: str, dst: str) -> None:
        self.ops.append(f"rename {src} {dst}")
        self.data[dst] = self.data.pop(src)

    def delete(self, name: str) -> None:
        self.data.pop(name, None)


def record(i: int) -> dict:
    return {"id": i, "thinking": "t", "completion_tokens": 1, "input": {"index": i}}


def failure(i: int, reason: str) -> dict:
    return {"index": i, "id": i, "reason": reason, "detail": "d"}


def drive(book: ShardBook, n: int, *, limit: int | None = None) -> tuple[list[int], list[int]]:
    """Run `pending` over n items, giving each item it yields an outcome (odd ones fail)."""
    done, skipped = [], []
    for item in book.pending((Item(i) for i in range(n)), limit=limit, skipped=skipped.append):
        done.append(item.index)
        if item.index % 2:
            book.write(item.index, failure(item.index, "generation_failed"), failure=True)
        else:
            book.write(item.index, record(item.index), failure=False)
    return done, skipped


def test_pending_resumes_through_limits_growth_and_retries_without_touching_the_disk(tmp_path: Path):
    files = MemoryFiles()
    shards_dir = tmp_path / "shards"
    book = ShardBook(shards_dir, 3, files=files)
    assert drive(book, 8, limit=5) == ([0, 1, 2, 3, 4], [])
    assert book.items_read == 5 and sorted(book.committed) == [0, 1]  # [0-2], [3-4] (the limit ends it)
    book.close()

    again = ShardBook(shards_dir, 3, files=files)
    assert drive(again, 8, limit=5) == ([], [3, 2])  # committed shards skipped whole, once each
    # a larger limit: shard 1 ended early, is reopened, and gets item 5; shard 2 is new
    assert drive(again, 8) == ([5, 6, 7], [3, 2]) and again.items_read == 8
    assert sorted(again.committed) == [0, 1, 2] and not again.open
    assert "rename part-00000001.jsonl part-00000001.jsonl.partial" in files.ops
    again.close()

    retry = ShardBook(shards_dir, 3, files=files)
    assert retry.forget_failures({"generation_failed"}) == 4  # items 1, 3, 5, 7
    # every shard is partial again: its records are passed over one by one, its failures redone
    assert drive(retry, 8) == ([1, 3, 5, 7], [1, 1, 1, 1])
    assert retry.summary_stats().records == 4 and retry.collect_failures(tmp_path / "failures.jsonl") == 4
    assert len((tmp_path / "failures.jsonl").read_text().splitlines()) == 4
    assert not shards_dir.exists()  # every shard file went through the ShardFiles
    committed = [n for n in files.names("part-*.jsonl") if not n.endswith(".failures.jsonl")]
    rows = [json.loads(line) for n in committed for line in files.read(n).splitlines()]
    assert [r["id"] for r in rows] == [0, 2, 4, 6]  # records in input order, each once


def test_a_commit_writes_the_records_file_last():
    files = MemoryFiles()
    book = ShardBook(Path("unused"), 2, files=files)
    drive(book, 2)
    assert [op for op in files.ops if "part-00000000" in op] == [
        "write part-00000000.stats.json",
        "commit part-00000000.failures.jsonl",
        "commit part-00000000.jsonl",
    ]


def test_the_book_and_the_commit_are_two_modules_and_the_old_names_stay():
    """shards.py keeps the book, shardcommit.py commits one shard; the commit's names are still
    importable from shards (the Python API is stable)."""
    from tpt.augment import shardcommit, shards

    for name in (
        "OpenShard",
        "ShardStats",
        "ShardFiles",
        "settle_commit",
        "shard_name",
        "PARTIAL",
        "shard_files",
    ):
        assert getattr(shards, name) is getattr(shardcommit, name)
    assert not hasattr(shardcommit, "ShardBook")


def test_shard_files_picks_the_local_seam_for_a_directory(tmp_path):
    from tpt.augment.shardcommit import shard_files
    from tpt.storage.localshards import LocalShardFiles

    files = shard_files(tmp_path / "shards")
    assert isinstance(files, LocalShardFiles) and (tmp_path / "shards").is_dir()
