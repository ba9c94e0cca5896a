"""The bookkeeping of augment's shards: which are committed, which are open, which items still need an
outcome (exactly once; committing one shard is `shardcommit.py`'s).

`ShardBook` holds one output's shards: at start it settles any commit a crash interrupted and reads
the committed shards' stats sidecars (how many items each holds, their first ids); `pending` streams the
items still without an outcome (a committed shard's items passed over unread, a committed shard that
ended early reopened, a partial shard's done items skipped); `write` appends an outcome to its open
shard and commits the shard once every item of its range has one. Memory is bounded by the shards open
at once, not by the corpus (and 16 bytes per distinct document id: `book.ids` keeps the first input
index of every id, so duplicates are found across resumes). `forget_failures` (--retry-failed) takes
failure lines back out; `summary_stats` and `collect_failures` total the shards at the end of a run.

The names of `shardcommit` (`OpenShard`, `ShardStats`, `ShardFiles`, `settle_commit`, `shard_name`,
`PARTIAL`, ...) stay importable from here.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from tpt.augment.shardcommit import (
    PARTIAL,
    IdOf,
    OpenShard,
    ShardFiles,
    ShardStats,
    Span,
    kept_duplicate_line,
    settle_commit,
    shard_files,
    shard_name,
    uncommit_records,
)
from tpt.core.duplicate_ids import IdRegistry
from tpt.storage.localshards import LocalShardFiles
from tpt.storage.urls import is_remote

__all__ = [
    "PARTIAL",
    "IdOf",
    "OpenShard",
    "ShardBook",
    "ShardFiles",
    "ShardStats",
    "Span",
    "kept_duplicate_line",
    "settle_commit",
    "shard_files",
    "shard_name",
]


def _ignore(n: int) -> None:
    pass


def _without_reasons(data: bytes, reasons: Collection[str]) -> tuple[bytes, int]:
    """Complete failure lines whose reason is not in `reasons`, and how many were dropped. A torn
    last line (no newline) is dropped too: the partial-shard repair would cut it anyway."""
    kept, dropped = [], 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            reason = json.loads(line).get("reason")
        except (json.JSONDecodeError, AttributeError):
            reason = None
        if reason in reasons:
            dropped += 1
        else:
            kept.append(line)
    return b"".join(kept), dropped


class ShardBook:
    """All shards of one output directory; thread-safe (the backend may pull input from its own thread)."""

    def __init__(
        self,
        directory: Path,
        shard_size: int,
        id_of: IdOf | None = None,
        files: ShardFiles | None = None,
        records_format: str = "jsonl",
    ):
        self.files = files or LocalShardFiles(directory)
        self.suffix = {"jsonl": ".jsonl", "parquet": ".parquet"}[records_format]
        """The committed records file's suffix (the partial stage is JSONL either way)."""
        self.size = shard_size
        self.lock = threading.RLock()
        self.open: dict[int, OpenShard] = {}
        self.committed: dict[int, int] = {}  # shard -> number of items it holds
        self.id_of = id_of
        self.ids = IdRegistry()
        """id hash -> input index of its first occurrence, over every shard seen (for duplicates)."""
        self.items_read = 0
        """Input items that `pending` went through, to the end of the stream (or of its limit)."""
        self._finish_interrupted_commits()
        for name in self.files.names(f"part-*{self.suffix}"):
            if name.endswith(".failures.jsonl"):
                continue
            k = int(name[5:13])
            stats = json.loads(self.files.read(f"{shard_name(k)}.stats.json"))
            self.committed[k] = stats["items"]
            for index, h in stats.get("ids", ()):  # an output of an older tpt has none
                self.ids.add(h, index)

    def _finish_interrupted_commits(self) -> None:
        """Settle a crash inside commit(). Its steps: stats sidecar, failures file, records file (the
        commit point), each written whole and renamed. Without the records file the shard is not
        committed: undo the earlier steps. With it, drop leftovers of the partial stage."""
        for stats in self.files.names("part-*.stats.json"):
            settle_commit(self.files, stats[: -len(".stats.json")], self.suffix)

    def pending(
        self, items: Iterable[Any], *, limit: int | None = None, skipped: Callable[[int], None] = _ignore
    ) -> Iterator[Any]:
        """The items (anything with an input `index`, in input order) that still need an outcome.

        Items of a committed shard are passed over without being looked at (`skipped(n)` once per
        shard), a committed shard that ended early (an earlier --limit, a corpus that grew) is reopened,
        items that already have an outcome in a partial shard are passed over (`skipped(1)`), and each
        shard learns how many items it holds as the stream leaves it, so that a complete one commits.
        At the end of the stream `items_read` is the number of items up to it (or up to `limit`)."""
        current, last = -1, -1
        for item in items:
            if limit is not None and item.index >= limit:
                break
            last = item.index
            k, offset = divmod(item.index, self.size)
            if k != current:
                if current >= 0:
                    self.set_expected(current, self.size)
                current = k
            held = self.committed.get(k)
            if held is not None:
                if offset < held:
                    if offset == 0:
                        skipped(held)
                    continue
                self.reopen(k)  # an earlier run stopped inside this shard
            if item.index in self.shard(k).done_indices:
                skipped(1)
                continue
            yield item
        self.items_read = last + 1
        if last >= 0:
            k, offset = divmod(last, self.size)
            self.set_expected(k, offset + 1)

    def committed_items(self, k: int) -> int | None:
        """Items held by committed shard k, or None if it is not committed."""
        return self.committed.get(k)

    def reopen(self, k: int) -> None:
        """Turn a committed shard that ended early (an earlier --limit, a corpus that grew) back into a
        partial one, so its remaining items are added to it."""
        with self.lock:
            name = shard_name(k)
            uncommit_records(self.files, name, self.suffix)
            self.files.rename(f"{name}.failures.jsonl", f"{name}.failures.jsonl{PARTIAL}")
            self.files.delete(f"{name}.stats.json")
            del self.committed[k]

    def forget_failures(self, reasons: Collection[str]) -> int:
        """Drop the failure lines with these reasons, so that a run does those items again
        (`tpt augment --retry-failed`); returns how many lines were dropped. Call it before any
        shard is opened.

        A committed shard goes back to partial: the filtered failures are written as its partial
        failures file (fsynced), then its records file becomes the partial records file, then the
        committed failures file and the stats sidecar go. A crash before the records rename leaves
        the shard committed (the next run drops the new partial file); a crash after it is settled
        by `_finish_interrupted_commits`, which keeps the filtered partial file. A partial shard's
        failures file is filtered in place (written whole, then renamed)."""
        dropped = 0
        with self.lock:
            assert not self.open, "forget_failures() must run before shards are opened"
            f = self.files
            for name in f.names("part-*.failures.jsonl*"):
                committed = name.endswith(".failures.jsonl")
                if not committed and not name.endswith(".failures.jsonl" + PARTIAL):
                    continue
                kept, n = _without_reasons(f.read(name), reasons)
                if not n:
                    continue
                dropped += n
                stem = name.split(".")[0]
                f.write(f"{stem}.failures.jsonl{PARTIAL}", kept)
                if committed:
                    uncommit_records(f, stem, self.suffix)
                    f.delete(name)
                    f.delete(f"{stem}.stats.json")
                    del self.committed[int(stem[5:13])]
        return dropped

    def shard(self, k: int) -> OpenShard:
        with self.lock:
            if k not in self.open:
                sh = self.open[k] = OpenShard(self.files, k, self.size, self.id_of, self.suffix)
                for index, h in sh.first_ids:
                    self.ids.add(h, index)
            return self.open[k]

    def write(self, index: int, line: dict[str, Any], *, failure: bool) -> bool:
        with self.lock:
            sh = self.shard(index // self.size)
            ok = sh.write(index, line, failure=failure)
            self._maybe_commit(sh)
            return ok

    def set_expected(self, k: int, count: int) -> None:
        with self.lock:
            if k in self.committed:
                return
            sh = self.shard(k)
            sh.expected = count
            self._maybe_commit(sh)

    def _maybe_commit(self, sh: OpenShard) -> None:
        if sh.complete():
            sh.commit()
            self.committed[sh.k] = sh.done
            del self.open[sh.k]

    def close(self) -> None:
        with self.lock:
            for sh in self.open.values():
                sh.close()

    def summary_stats(self) -> ShardStats:
        """Totals over committed shards (from their sidecars) and open ones."""
        total = ShardStats()
        for name in self.files.names("part-*.stats.json"):
            d = json.loads(self.files.read(name))
            for key in ("shard", "items", "ids", "kept_duplicates"):
                d.pop(key, None)
            total.merge(ShardStats.from_json(d))
        with self.lock:
            for sh in self.open.values():
                total.merge(sh.stats)
        return total

    def collect_failures(self, out: Path) -> int:
        """Rebuild `failures.jsonl` from every shard's failure lines, each shard's kept duplicates
        after them (reason duplicate_id, kept: true); returns the count of failures (items without a
        record)."""
        with self.lock:
            kept = {k: list(sh.kept_duplicates) for k, sh in self.open.items()}
        remote = is_remote(out)  # written on local disk, then uploaded as one object
        tmp = Path(self.files.local) / f".{out.name}.tmp" if remote else out.with_name(f".{out.name}.tmp")  # type: ignore[attr-defined]
        n = 0
        try:
            with open(tmp, "wb") as dst:
                for name in self.files.names("part-*.failures.jsonl*"):
                    for line in self.files.read(name).splitlines(keepends=True):
                        if line.endswith(b"\n"):  # a torn last line of a partial file is no failure yet
                            dst.write(line)
                            n += 1
                    k = int(name[5:13])
                    if k not in kept and name.endswith(".failures.jsonl"):
                        sidecar = json.loads(self.files.read(f"{shard_name(k)}.stats.json"))
                        kept[k] = sidecar.get("kept_duplicates", [])
                    for row in kept.pop(k, []):
                        dst.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))
            if remote:
                from tpt.storage.lease import upload_held

                upload_held(tmp, out)
                tmp.unlink()
            else:
                os.replace(tmp, out)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return n
