"""RemotePath: an object-store URL with the part of pathlib.Path's interface the stages use.

Object stores have directories only as key prefixes: `mkdir` does nothing, `is_dir()` is true for a
prefix that has objects under it, `write_bytes` puts one whole object (readers see the old one or the
new one, never half), and there is no rename and no append (storage/shardfiles.py builds exactly-once on that).
Every storage error is turned into one line (`StorageError`) by `remote_errors`: access denied (wrong
or missing credentials), no credentials, an endpoint that cannot be reached, a missing bucket.
"""

from __future__ import annotations

import fnmatch
import io
import os
from collections.abc import Iterator
from typing import Any, ClassVar

from tpt.storage.errors import StorageError, remote_errors
from tpt.storage.urls import redact

__all__ = ["RemotePath", "StorageError", "download", "remote_errors", "upload"]


class RemotePath:
    """An object (or a prefix of objects) on a remote filesystem, addressed by its URL."""

    __slots__ = ("url", "_size", "_fs", "_path")
    is_remote_path: ClassVar[bool] = True
    """How tpt.storage.urls.is_remote tells a RemotePath without importing this module."""

    def __init__(self, url: str, *, size: int | None = None) -> None:
        self.url = url.rstrip("/") if url.count("/") > 2 else url
        self._size = size
        self._fs: Any = None
        self._path: str | None = None

    # --- naming -------------------------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0]

    @property
    def fs(self) -> Any:
        if self._fs is None:
            from tpt.storage.filesystems import filesystem

            self._fs, self._path = filesystem(self.url)
        return self._fs

    @property
    def path(self) -> str:
        """The path inside the filesystem (`bucket/key` for S3)."""
        if self._path is None:
            self.fs  # noqa: B018 - sets _path
        return self._path  # type: ignore[return-value]

    @property
    def name(self) -> str:
        return self.url.rstrip("/").rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        name = self.name
        return name[name.rfind(".") :] if "." in name else ""

    @property
    def parent(self) -> RemotePath:
        head = self.url.rstrip("/").rsplit("/", 1)[0]
        return RemotePath(head) if head.count("/") >= 2 and not head.endswith(":/") else self

    def __truediv__(self, other: str) -> RemotePath:
        return RemotePath(f"{self.url.rstrip('/')}/{str(other).lstrip('/')}")

    def with_name(self, name: str) -> RemotePath:
        return self.parent / name

    def resolve(self) -> RemotePath:
        return self

    def expanduser(self) -> RemotePath:
        return self

    def relative_to(self, other: RemotePath) -> str:
        prefix = other.url.rstrip("/") + "/"
        if not self.url.startswith(prefix):
            raise ValueError(f"{self} is not under {other}")
        return self.url[len(prefix) :]

    def __str__(self) -> str:
        return redact(self.url)

    def __repr__(self) -> str:
        return f"RemotePath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RemotePath) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __lt__(self, other: RemotePath) -> bool:
        return self.url < other.url

    # --- queries ------------------------------------------------------------------------------------
    def exists(self) -> bool:
        with remote_errors(self.url, "looking it up"):
            return bool(self.fs.exists(self.path))

    def is_file(self) -> bool:
        with remote_errors(self.url, "looking it up"):
            return bool(self.fs.isfile(self.path))

    def is_dir(self) -> bool:
        with remote_errors(self.url, "looking it up"):
            return bool(self.fs.isdir(self.path))

    @property
    def size(self) -> int:
        if self._size is None:
            with remote_errors(self.url, "reading its size"):
                self._size = int(self.fs.size(self.path))
        return self._size

    def _child(self, info: dict[str, Any]) -> RemotePath:
        full = self.fs.unstrip_protocol(info["name"])
        # unstrip_protocol keeps the scheme as registered (s3://); keep the one the user wrote
        full = self.scheme + "://" + full.split("://", 1)[1] if "://" in full else f"{self.scheme}://{full}"
        return RemotePath(full, size=int(info.get("size") or 0))

    def rglob(self, pattern: str = "*") -> Iterator[RemotePath]:
        """Every object below this prefix whose name matches `pattern`, in key order."""
        with remote_errors(self.url, "listing it"):
            found = self.fs.find(self.path, detail=True)
        for key in sorted(found):
            info = found[key]
            if info.get("type", "file") == "file" and fnmatch.fnmatch(key.rsplit("/", 1)[-1], pattern):
                yield self._child(info)

    def glob(self, pattern: str) -> Iterator[RemotePath]:
        """The objects matching a glob relative to this prefix (`*`, `**`, `?`, `[...]`)."""
        with remote_errors(self.url, "listing it"):
            found = self.fs.glob(f"{self.path.rstrip('/')}/{pattern}", detail=True)
        for key in sorted(found):
            if found[key].get("type", "file") == "file":
                yield self._child(found[key])

    def iterdir(self) -> Iterator[RemotePath]:
        with remote_errors(self.url, "listing it"):
            entries = self.fs.ls(self.path, detail=True)
        for info in sorted(entries, key=lambda i: i["name"]):
            yield self._child(info)

    # --- reading and writing ------------------------------------------------------------------------
    def open(self, mode: str = "rb", **kwargs: Any) -> Any:
        """`rb`: a buffered streaming reader with read-ahead (readahead.py); `rb+seek`: a seekable
        reader with a block cache (Parquet); `wb`: an upload that becomes the object when closed."""
        if mode == "rb":
            from tpt.storage.readahead import ReadAhead

            return io.BufferedReader(ReadAhead(self), buffer_size=1 << 16)
        if mode in ("rb+seek", "rbs"):
            from tpt.storage.readahead import BLOCK

            with remote_errors(self.url, "opening it"):
                return self.fs.open(self.path, "rb", block_size=BLOCK, cache_type="readahead")
        if mode in ("r", "rt"):
            return io.TextIOWrapper(self.open("rb"), encoding=kwargs.get("encoding") or "utf-8")
        if mode == "wb":
            with remote_errors(self.url, "opening it for writing"):
                return self.fs.open(self.path, "wb")
        raise ValueError(f"RemotePath.open: mode {mode!r} is not supported")

    def read_bytes(self) -> bytes:
        with remote_errors(self.url, "reading it"):
            return bytes(self.fs.cat_file(self.path))

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def write_bytes(self, data: bytes) -> None:
        with remote_errors(self.url, "writing it"):
            self.fs.pipe_file(self.path, data)

    def write_text(self, text: str, encoding: str = "utf-8") -> None:
        self.write_bytes(text.encode(encoding))

    def unlink(self, missing_ok: bool = False) -> None:
        with remote_errors(self.url, "deleting it"):
            try:
                self.fs.rm_file(self.path)
            except FileNotFoundError:
                if not missing_ok:
                    raise

    def mkdir(self, parents: bool = False, exist_ok: bool = False) -> None:
        """Object stores have no directories: a prefix exists once an object is under it."""


def upload(local: os.PathLike | str, remote: RemotePath) -> None:
    """Upload a local file as one object (a multipart upload for a large one: the object appears only
    when it completes, so readers never see part of it). Plain transport: a write under a leased output
    goes through `tpt.storage.lease.upload_held`, which checks the lease first."""
    with remote_errors(remote.url, "uploading it"):
        remote.fs.put_file(os.fspath(local), remote.path)


def download(remote: RemotePath, local: os.PathLike | str) -> None:
    """Copy one object to a local file (streamed, not held in memory)."""
    with remote_errors(remote.url, "downloading it"):
        remote.fs.get_file(remote.path, os.fspath(local))
