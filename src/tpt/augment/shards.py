"""Exactly-once storage of augment output: fixed shards of the input stream, appended, then committed.

Shard k holds the outcomes (a record or a failure line) of input items [k*S, (k+1)*S). While it fills, its
lines are appended and flushed to `part-k.jsonl.partial` and `part-k.failures.jsonl.partial`; when every
item of the range has an outcome it is committed: fsync, a stats sidecar, then renames (the records
rename is the commit point). After a crash or `kill -9` at any moment:
- a committed shard is skipped without parsing its input;
- a partial shard is repaired (a torn last line is cut) and only its items without an outcome are redone;
so every item ends with exactly one outcome, and no partial or corrupt line survives.
Memory is bounded by the shards open at once, not by the corpus (and 16 bytes per distinct document id:
the book keeps the first input index of every id, `book.ids`, so duplicates are found across resumes;
a committed shard's sidecar lists its first occurrences and its kept duplicates).

Every file operation goes through one small seam, `ShardFiles` (`tpt.storage.localshards.LocalShardFiles`: one local
directory, a commit is an fsync and a rename): names ending in `.partial` are the appended stage, local
to the process that writes; every other name is committed (written whole, listed, read, renamed back to
partial, deleted). The book decides the order of the steps (stats sidecar, failures, records last).
On object storage the seam is `tpt.storage.shardfiles.RemoteShardFiles` (partials staged on local
disk, committed files as whole objects; its docstring says why the same order holds there).

With `records_format="parquet"` (--output-format parquet) a shard's committed records file is
`part-k.parquet` (formats/parquet.py) instead of `part-k.jsonl`; the partial stage is JSONL either way,
and a committed Parquet shard that goes back to partial is turned back into its JSONL lines.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from tpt.core.duplicate_ids import IdRegistry
from tpt.storage.localshards import LocalShardFiles

PARTIAL = ".partial"


def _ignore(n: int) -> None:
    pass


def shard_name(k: int) -> str:
    return f"part-{k:08d}"


@dataclass
class ShardStats:
    records: int = 0
    failures: Counter = field(default_factory=Counter)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    doc_tokens: int = 0
    thinking_chars: int = 0
    truncated_docs: int = 0
    length_cut: int = 0
    loop_stopped: int = 0
    """Records the loop guard stopped (finish_reason 'repetition', --loop-policy keep-prefix)."""
    loop_stopped_tokens: int = 0
    """The tokens those trajectories generated before the guard stopped them."""
    duplicates_kept: int = 0
    """Records whose id an earlier document has (`duplicate_of`; --duplicate-ids keep-both)."""

    def add_record(self, rec: dict[str, Any]) -> None:
        self.records += 1
        self.prompt_tokens += int(rec.get("prompt_tokens") or 0)
        self.completion_tokens += int(rec.get("completion_tokens") or 0)
        self.doc_tokens += int(rec.get("doc_tokens") or 0)
        self.thinking_chars += len(rec.get("thinking") or "")
        self.truncated_docs += bool(rec.get("doc_truncated"))
        self.length_cut += rec.get("finish_reason") == "length"
        if rec.get("finish_reason") == "repetition":
            self.loop_stopped += 1
            self.loop_stopped_tokens += int(rec.get("completion_tokens") or 0)
        self.duplicates_kept += rec.get("duplicate_of") is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "failures": dict(self.failures),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "doc_tokens": self.doc_tokens,
            "thinking_chars": self.thinking_chars,
            "truncated_docs": self.truncated_docs,
            "length_cut": self.length_cut,
            "loop_stopped": self.loop_stopped,
            "loop_stopped_tokens": self.loop_stopped_tokens,
            "duplicates_kept": self.duplicates_kept,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ShardStats:
        s = cls()
        for k, v in d.items():
            setattr(s, k, Counter(v) if k == "failures" else v)
        return s

    def merge(self, other: ShardStats) -> None:
        for k in (
            "records",
            "prompt_tokens",
            "completion_tokens",
            "doc_tokens",
            "thinking_chars",
            "truncated_docs",
            "length_cut",
            "loop_stopped",
            "loop_stopped_tokens",
            "duplicates_kept",
        ):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.failures.update(other.failures)


Span = tuple[int, int, int]
"""(input index, start byte, end byte) of one line in a partial file."""


class ShardFiles(Protocol):
    """The storage seam of the shard book: the file operations of one shards directory, by name."""

    def names(self, pattern: str) -> list[str]:
        """Names matching a glob pattern, sorted."""
        ...

    def exists(self, name: str) -> bool: ...

    def read(self, name: str) -> bytes: ...

    def write(self, name: str, data: bytes) -> None:
        """Write a whole file: readers see the old one or the new one (fsynced)."""
        ...

    def append(self, name: str) -> BinaryIO:
        """A partial file opened for appending (created if absent)."""
        ...

    def truncate(self, name: str, size: int) -> None:
        """Cut a partial file's torn tail."""
        ...

    def close(self, handle: BinaryIO, *, sync: bool) -> None:
        """Close an appended file; with `sync`, once its bytes are on stable storage."""
        ...

    def commit(self, partial: str, name: str, parts: list[tuple[int, int]]) -> None:
        """Make the byte ranges `parts` of partial file `partial` the committed file `name` (whole,
        fsynced), then remove the partial file. A failure leaves the partial file as it was."""
        ...

    def rename(self, src: str, dst: str) -> None:
        """Move a file (committed back to partial, or a partial one committed) in one step."""
        ...

    def delete(self, name: str) -> None:
        """Remove a file if it is there."""
        ...


def _repair_and_read(
    files: ShardFiles, name: str, index_of: Callable[[dict[str, Any]], int]
) -> list[tuple[dict, Span]]:
    """Read a partial JSONL file, cutting a torn or corrupt tail so that appends continue cleanly."""
    if not files.exists(name):
        return []
    data = files.read(name)
    good_end = 0
    rows: list[tuple[dict, Span]] = []
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl < 0:
            break  # torn last line: no newline
        try:
            row = json.loads(data[pos:nl])
            rows.append((row, (int(index_of(row)), pos, nl + 1)))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            break  # corrupt line: drop it and everything after (only the tail can be torn)
        pos = good_end = nl + 1
    if good_end != len(data):
        files.truncate(name, good_end)
    return rows


def _sort_lines(files: ShardFiles, partial: str, name: str, spans: list[Span]) -> None:
    """Commit a partial file's lines as `name` in input order; the byte spans were noted when the lines
    were written, so no line is parsed again here (a `.parquet` name: the lines become its rows)."""
    parts = [(start, end) for _, start, end in sorted(spans)]
    if name.endswith(".parquet"):
        from tpt.formats.parquet import lines_to_parquet

        data = files.read(partial)
        files.write(name, lines_to_parquet(b"".join(data[start:end] for start, end in parts)))
        files.delete(partial)
        return
    files.commit(partial, name, parts)


def _uncommit_records(files: ShardFiles, stem: str, suffix: str) -> None:
    """Committed records file -> partial records file (JSONL), the committed one gone last."""
    if suffix == ".parquet":
        from tpt.formats.parquet import parquet_to_lines

        files.write(f"{stem}.jsonl{PARTIAL}", parquet_to_lines(files.read(f"{stem}.parquet")))
        files.delete(f"{stem}.parquet")
    else:
        files.rename(f"{stem}.jsonl", f"{stem}.jsonl{PARTIAL}")


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()


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


def _record_index(row: dict[str, Any]) -> int:
    return row["input"]["index"]


def _failure_index(row: dict[str, Any]) -> int:
    return row["index"]


IdOf = Callable[[dict[str, Any], bool], "int | None"]
"""id_of(line, failure): the id hash of an outcome that is its id's first occurrence, else None."""


def kept_duplicate_line(rec: dict[str, Any]) -> dict[str, Any]:
    """The failures.jsonl line that reports a record kept although its id came before."""
    where = rec.get("input") or {}
    return {
        "file": where.get("file"),
        "line": where.get("line"),
        "index": where.get("index"),
        "id": rec.get("id"),
        "reason": "duplicate_id",
        "kept": True,
        "detail": f"the id of input item {rec['duplicate_of']} again; kept both (--duplicate-ids keep-both)",
    }


class OpenShard:
    def __init__(
        self, files: ShardFiles, k: int, size: int, id_of: IdOf | None = None, records_suffix: str = ".jsonl"
    ):
        self.k = k
        self.files = files
        self.id_of = id_of
        self.first_ids: list[list[int]] = []
        """[input index, id hash] of the outcomes that are their id's first occurrence."""
        self.kept_duplicates: list[dict[str, Any]] = []
        self.size = size
        base = shard_name(k)
        self.records_name, self.failures_name = f"{base}{records_suffix}", f"{base}.failures.jsonl"
        self.stats_name = f"{base}.stats.json"
        rec_partial, fail_partial = f"{base}.jsonl{PARTIAL}", self.failures_name + PARTIAL
        self.stats = ShardStats()
        self.done_indices: set[int] = set()
        self._spans: dict[bool, list[Span]] = {False: [], True: []}  # failure? -> spans
        self._size = {False: 0, True: 0}
        for rec, span in _repair_and_read(files, rec_partial, _record_index):
            self._note(False, span)
            self._add(rec, False, span[0])
        for fail, span in _repair_and_read(files, fail_partial, _failure_index):
            self._note(True, span)
            self._add(fail, True, span[0])
        self.expected: int | None = None
        self._files = {False: files.append(rec_partial), True: files.append(fail_partial)}

    def _add(self, line: dict[str, Any], failure: bool, index: int) -> None:
        if failure:
            self.stats.failures[line["reason"]] += 1
        else:
            self.stats.add_record(line)
            if line.get("duplicate_of") is not None:
                self.kept_duplicates.append(kept_duplicate_line(line))
        if self.id_of is not None and (h := self.id_of(line, failure)) is not None:
            self.first_ids.append([index, h])

    def _note(self, failure: bool, span: Span) -> None:
        self.done_indices.add(span[0])
        self._spans[failure].append(span)
        self._size[failure] = span[2]

    @property
    def done(self) -> int:
        return len(self.done_indices)

    def write(self, index: int, line: dict[str, Any], *, failure: bool) -> bool:
        """Append one outcome; False (and nothing written) if the item already has one."""
        if index in self.done_indices:
            return False
        data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
        f = self._files[failure]
        f.write(data)
        f.flush()  # survives kill -9 (the page cache outlives the process); fsync at commit
        start = self._size[failure]
        self._note(failure, (index, start, start + len(data)))
        self._add(line, failure, index)
        return True

    def complete(self) -> bool:
        return self.expected is not None and self.done >= self.expected

    def commit(self) -> None:
        for f in self._files.values():
            self.files.close(f, sync=True)
        self.files.write(
            self.stats_name,
            _json_bytes(
                {
                    "shard": self.k,
                    "items": self.done,
                    **self.stats.to_json(),
                    "ids": self.first_ids,
                    "kept_duplicates": self.kept_duplicates,
                }
            ),
        )
        # Lines arrive in completion order; commit them in input order so that the same input always
        # gives the same files (downstream shuffles are then reproducible).
        _sort_lines(self.files, self.failures_name + PARTIAL, self.failures_name, self._spans[True])
        rec_partial = f"{shard_name(self.k)}.jsonl{PARTIAL}"
        _sort_lines(self.files, rec_partial, self.records_name, self._spans[False])  # commit point

    def close(self) -> None:
        for f in self._files.values():
            if not f.closed:
                self.files.close(f, sync=False)


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
            _uncommit_records(self.files, name, self.suffix)
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
                    _uncommit_records(f, stem, self.suffix)
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
        from tpt.storage import is_remote

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
                from tpt.storage.remote import upload

                upload(tmp, out)
                tmp.unlink()
            else:
                os.replace(tmp, out)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return n


def settle_commit(files: Any, stem: str, suffix: str) -> None:
    """Finish or undo the interrupted commit of shard `stem` whose stats sidecar exists (see
    ShardBook._finish_interrupted_commits): with its records file it is committed, so drop the partial
    stage's leftovers; without it, undo the earlier steps (the failures back to partial, the sidecar gone)."""
    records, failures = f"{stem}{suffix}", f"{stem}.failures.jsonl"
    fail_partial, rec_partial = failures + PARTIAL, f"{stem}.jsonl{PARTIAL}"
    if files.exists(records):
        files.delete(fail_partial)
        files.delete(rec_partial)
        return
    if files.exists(failures):
        if files.exists(fail_partial):
            files.delete(failures)
        else:
            files.rename(failures, fail_partial)
    files.delete(f"{stem}.stats.json")
