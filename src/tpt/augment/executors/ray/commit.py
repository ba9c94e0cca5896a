"""The one place where the Ray executor touches augment's shard commit protocol and stage internals.

Workers that read their own input also write and commit their own output shard, through exactly the
files and steps a local run uses (`tpt.augment.shards`: partial files appended, repaired after a crash,
committed by rename, records last). Everything this package needs from that protocol, and from
`stage`'s private helpers (the claim, the id rule, the summary), is called from here only, so that a
refactor of those modules re-points one file.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from tpt.augment import shards as _shards
from tpt.augment import stage as _stage
from tpt.augment.shards import OpenShard, ShardBook, settle_commit, shard_name

RETRYABLE = _stage.RETRYABLE
TEACHER_OUTCOMES = _stage.TEACHER_OUTCOMES
SamplingSent = _stage.SamplingSent
claim = _stage._claim
first_occurrence_id = _stage._first_occurrence_id
write_summary = _stage._write_summary


def shard_files(shards_dir: Any) -> Any:
    """The ShardFiles of a shards directory: object storage's, or a local directory's."""
    remote = _stage._remote_shard_files(shards_dir)
    if remote is not None:
        return remote
    from tpt.storage.localshards import LocalShardFiles

    return LocalShardFiles(Path(shards_dir))


def records_suffix(fmt: str) -> str:
    return {"jsonl": ".jsonl", "parquet": ".parquet"}[fmt]


def light_book(files: Any, shard_size: int, fmt: str, committed: dict[int, int] | None = None) -> ShardBook:
    """A ShardBook over `files` that has loaded nothing: no sidecar read, no id registry (the driver's
    memory stays O(shards)). Enough for reopen, forget_failures, summary_stats and collect_failures."""
    book = ShardBook.__new__(ShardBook)
    book.files = files
    book.suffix = records_suffix(fmt)
    book.size = shard_size
    book.lock = threading.RLock()
    book.open = {}
    book.committed = dict(committed or {})
    book.id_of = None
    book.items_read = 0
    return book


def committed_shards(files: Any, fmt: str) -> list[int]:
    """Shard numbers with a committed records file (listing only)."""
    suffix = records_suffix(fmt)
    return [int(n[5:13]) for n in files.names(f"part-*{suffix}") if not n.endswith(".failures.jsonl")]


def settle(files: Any, k: int, fmt: str) -> None:
    """ShardBook._finish_interrupted_commits for shard k only (a crash inside its commit)."""
    stem = shard_name(k)
    if files.exists(f"{stem}.stats.json"):
        settle_commit(files, stem, records_suffix(fmt))


def committed_items(files: Any, k: int, fmt: str) -> int | None:
    """Items held by committed shard k (its sidecar), or None when it is not committed."""
    import json

    if not files.exists(f"{shard_name(k)}{records_suffix(fmt)}"):
        return None
    return int(json.loads(files.read(f"{shard_name(k)}.stats.json"))["items"])


def reopen(files: Any, k: int, shard_size: int, fmt: str, held: int) -> None:
    light_book(files, shard_size, fmt, {k: held}).reopen(k)


def open_shard(files: Any, k: int, shard_size: int, fmt: str) -> OpenShard:
    return OpenShard(files, k, shard_size, first_occurrence_id, records_suffix(fmt))


def shard_lock(shards_dir: Any, k: int) -> Any:
    """One writer per shard: the output lock's mechanism (flock locally, a lease on object storage) on
    `shards/.part-k.lock`, so a worker Ray believes dead but that still runs cannot write beside the
    worker that redoes its unit."""
    from tpt.storage.outputlock import lock_output_dir

    return lock_output_dir(shards_dir, stage="augment-shard", name=f".{shard_name(k)}.lock")


def drop_shard_lock(shards_dir: Any, k: int) -> None:
    """Remove a committed shard's lock file (while holding it), so the output holds what a local run's does."""
    from tpt.storage import is_remote

    if not is_remote(shards_dir):
        (Path(shards_dir) / f".{shard_name(k)}.lock").unlink(missing_ok=True)


__all__ = ["OpenShard", "ShardBook", "_shards"]
