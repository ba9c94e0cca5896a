"""Committing one augment shard, exactly once, on a local disk or on object storage.

The protocol (shards.py's ShardBook decides which shards are open; this module owns what happens to
one of them). Shard k holds the outcomes (a record or a failure line) of input items [k*S, (k+1)*S).
While it fills, its lines are appended and flushed to `part-k.jsonl.partial` and
`part-k.failures.jsonl.partial`; when every item of the range has an outcome it is committed: fsync,
the stats sidecar `part-k.stats.json`, the failures file, then the records file (`part-k.jsonl`, or
`part-k.parquet` with --output-format parquet), each written whole; the records file is the commit
point. After a crash at any moment, `OpenShard` repairs a partial shard (a torn or corrupt tail is
cut) and `settle_commit` finishes or undoes a commit that was interrupted, so every item ends with
exactly one outcome and no partial or corrupt line survives.

Every file operation goes through one seam, `ShardFiles`, that `shard_files(directory)` picks:
`tpt.storage.localshards.LocalShardFiles` on a local disk (a commit is an fsync and a rename),
`tpt.storage.shardfiles.RemoteShardFiles` on object storage (partials staged on local disk,
committed files as whole objects; its docstring says why the same order holds there, and it checks
the output's lease before each write).

The API (the local stage and the Ray workers, which commit their own shards, call the same):
- `shard_files(directory) -> ShardFiles`, `shard_name(k)`, `PARTIAL`;
- `OpenShard(files, k, size, id_of, records_suffix)`: opens (and repairs) shard k's partial stage;
  `write(index, line, failure=...)` appends one outcome (False if the item has one already),
  `expected` / `complete()`, `commit()`, `close()`;
- `settle_commit(files, stem, suffix)`: for a shard whose stats sidecar exists, finish or undo the
  interrupted commit;
- `uncommit_records(files, stem, suffix)`: a committed records file back to the partial stage.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from tpt.storage.localshards import LocalShardFiles
from tpt.storage.urls import is_remote

PARTIAL = ".partial"


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


def uncommit_records(files: ShardFiles, stem: str, suffix: str) -> None:
    """Committed records file -> partial records file (JSONL), the committed one gone last."""
    if suffix == ".parquet":
        from tpt.formats.parquet import parquet_to_lines

        files.write(f"{stem}.jsonl{PARTIAL}", parquet_to_lines(files.read(f"{stem}.parquet")))
        files.delete(f"{stem}.parquet")
    else:
        files.rename(f"{stem}.jsonl", f"{stem}.jsonl{PARTIAL}")


def _json_bytes(obj: Any) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()


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


def shard_files(directory: Any) -> ShardFiles:
    """The ShardFiles of a shards directory: object storage's (partials staged locally, commits as
    whole objects) for a URL, else a local directory's."""
    if is_remote(directory):
        from tpt.storage import as_path
        from tpt.storage.shardfiles import RemoteShardFiles  # a local run loads no remote machinery

        return RemoteShardFiles(as_path(directory))  # type: ignore[arg-type]
    from pathlib import Path

    return LocalShardFiles(Path(directory))
