"""Augment's shard files when the output is on object storage: exactly once without rename or append.

This implements the shard book's storage seam (augment/shards.py, `ShardFiles`) for a remote shards
directory. The appended stage, the `*.partial` files, lives on local disk (a staging directory on the
machine that writes, TPT_STAGING_DIR or ~/.cache/tpt/staging/<hash of the URL>): an object store
cannot append, and a partial shard is this writer's private state anyway. Every committed file is one
object, written whole by a single PUT (or a multipart upload, which the store makes visible only when
it completes): readers see all of it or none of it, never a torn upload. The commit point of a shard
is its records object `part-K.jsonl`, uploaded last, after its stats sidecar and its failures object.
So, after a crash at any moment:
- a shard whose records object exists is committed: resume skips it, readers (`tpt pack s3://...`)
  read it; the local partial leftovers of its commit are dropped;
- a shard without one is not: its stats/failures objects are settled by the book (undone, or the
  failures taken back into the partial stage), and its items without an outcome are redone; on a
  machine without the staging directory (another node, a lost disk) the whole shard is redone, which
  is at most the shards that were open;
- the names are deterministic, so a redone upload overwrites, never adds.
"Renaming" a committed object back to partial (a shard reopened after --limit, --retry-failed)
downloads it to the staging directory first and deletes the object after, so a crash between the two
leaves the shard committed. Every remote write first checks that this run still holds the output's
lease (storage/lease.py), so a writer that lost it stops before it commits.

Requests: the committed names are listed once, then kept up to date by this writer's own uploads and
deletes (it is the only writer: it holds the lease), so `exists` costs no request; and a read of a
committed object also fetches, in parallel, the next READ_AHEAD objects of the same kind in name order
(stats sidecars at resume, failure files at the end of a run), so that reading every shard's sidecar is
not one round trip per shard. Memory: READ_AHEAD objects.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from pathlib import Path
from typing import BinaryIO

from tpt.storage.errors import remote_errors
from tpt.storage.lease import check_commit
from tpt.storage.localshards import LocalShardFiles
from tpt.storage.remote import RemotePath

PARTIAL = ".partial"
STAGING_ENV = "TPT_STAGING_DIR"
READ_AHEAD = 32


def staging_dir(remote: RemotePath) -> Path:
    """The local directory that holds the partial shards of a remote output on this machine."""
    base = os.environ.get(STAGING_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tpt", "staging"
    )
    return Path(base) / hashlib.sha256(remote.url.encode("utf-8")).hexdigest()[:16]


class RemoteShardFiles:
    """ShardFiles with partial files in a local staging directory and committed files as objects."""

    def __init__(self, remote: RemotePath, staging: Path | None = None) -> None:
        self.remote = remote
        self.local = Path(staging) if staging is not None else staging_dir(remote)
        self.staged = LocalShardFiles(self.local)
        """The partial files, in the local staging directory."""
        self.uploads = 0
        self.requests = 0
        """Round trips for listings and reads (a batch of reads is one); uploads are in `uploads`."""
        self._listing: set[str] | None = None
        self._ahead: dict[str, bytes] = {}

    @staticmethod
    def _is_partial(name: str) -> bool:
        return name.endswith(PARTIAL)

    def _obj(self, name: str) -> RemotePath:
        return self.remote / name

    def _remote_names(self) -> set[str]:
        if self._listing is None:
            self.requests += 1
            with remote_errors(self.remote.url, "listing the committed shards"):
                try:
                    entries = self.remote.fs.ls(self.remote.path, detail=False)
                except FileNotFoundError:
                    entries = []
            self._listing = {e.rstrip("/").rsplit("/", 1)[-1] for e in entries}
        return self._listing

    def _forget(self, name: str) -> None:
        self._ahead.pop(name, None)
        if self._listing is not None:
            self._listing.discard(name)

    def names(self, pattern: str) -> list[str]:
        found = set(fnmatch.filter(self._remote_names(), pattern))
        found.update(n for n in self.staged.names(pattern) if self._is_partial(n))
        return sorted(n for n in found if not n.startswith("."))

    def exists(self, name: str) -> bool:
        return self.staged.exists(name) if self._is_partial(name) else name in self._remote_names()

    def read(self, name: str) -> bytes:
        if self._is_partial(name):
            return self.staged.read(name)
        if name in self._ahead:
            return self._ahead.pop(name)
        kind = name[len("part-00000000") :] if name.startswith("part-") else None
        later = sorted(n for n in self._remote_names() if kind and n.endswith(kind) and n > name)
        batch = [name, *[n for n in later[: READ_AHEAD - 1] if n not in self._ahead]]
        self.requests += 1
        with remote_errors(self._obj(name).url, "reading it"):
            got = self.remote.fs.cat([self._obj(n).path for n in batch], on_error="return")
        for n in batch[1:]:
            data = got.get(self._obj(n).path)
            if isinstance(data, bytes | bytearray):
                self._ahead[n] = bytes(data)
        data = got.get(self._obj(name).path)
        if isinstance(data, BaseException) or data is None:
            return self._obj(name).read_bytes()  # raises the one-line error (or FileNotFoundError)
        return bytes(data)

    def write(self, name: str, data: bytes) -> None:
        if self._is_partial(name):
            self.staged.write(name, data)
        else:
            self._put(name, data)

    def _put(self, name: str, data: bytes) -> None:
        obj = self._obj(name)
        check_commit(obj.url)
        self._ahead.pop(name, None)
        obj.write_bytes(data)
        self.uploads += 1
        self._remote_names().add(name)

    def append(self, name: str) -> BinaryIO:
        assert self._is_partial(name), name
        return self.staged.append(name)

    def truncate(self, name: str, size: int) -> None:
        self.staged.truncate(name, size)

    def close(self, handle: BinaryIO, *, sync: bool) -> None:
        self.staged.close(handle, sync=sync)

    def commit(self, partial: str, name: str, parts: list[tuple[int, int]]) -> None:
        data = self.staged.read(partial)
        self._put(name, b"".join(data[start:end] for start, end in parts))  # a failure keeps the partial
        self.staged.delete(partial)

    def rename(self, src: str, dst: str) -> None:
        src_partial, dst_partial = self._is_partial(src), self._is_partial(dst)
        if src_partial and dst_partial:
            self.staged.rename(src, dst)
        elif src_partial:  # partial -> committed: upload, then drop the local file
            self._put(dst, self.staged.read(src))
            self.staged.delete(src)
        elif dst_partial:  # committed -> partial: download first, delete the object after
            self.staged.write(dst, self.read(src))
            self.delete(src)
        else:
            self._put(dst, self.read(src))
            self.delete(src)

    def delete(self, name: str) -> None:
        if self._is_partial(name):
            self.staged.delete(name)
        else:
            check_commit(self._obj(name).url)
            self._obj(name).unlink(missing_ok=True)
            self._forget(name)


def shard_files(directory: object) -> RemoteShardFiles | None:
    """The ShardFiles of a shards directory on object storage, or None for a local one (the book's own
    LocalShardFiles)."""
    from tpt.storage import as_path
    from tpt.storage.urls import is_remote

    return RemoteShardFiles(as_path(directory)) if is_remote(directory) else None  # type: ignore[arg-type]
