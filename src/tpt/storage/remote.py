"""RemotePath: an object-store URL with the part of pathlib.Path's interface the stages use.

Object stores have directories only as key prefixes: `mkdir` does nothing, `is_dir()` is true for a
prefix that has objects under it, `write_bytes` puts one whole object (readers see the old one or the
new one, never half), and there is no rename and no append (commits.py builds exactly-once on that).
Every storage error is turned into one line (`StorageError`) by `remote_errors`: access denied (wrong
or missing credentials), no credentials, an endpoint that cannot be reached, a missing bucket.
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import io
import os
import re
from collections.abc import Iterator
from typing import Any

from tpt.errors import TptError

CREDENTIAL_HINT = {
    "s3": "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws/credentials "
    "(and AWS_ENDPOINT_URL for an S3-compatible store)",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS or `gcloud auth application-default login`",
    "hf": "HF_TOKEN or `huggingface-cli login`",
}


class StorageError(TptError):
    """An object store refused or failed a request; the message says which URL and what to check."""


_SECRET_NAMES = re.compile(r"SECRET|TOKEN|PASSWORD|CREDENTIAL|_KEY$|ACCESS_KEY", re.IGNORECASE)


def scrub(text: str) -> str:
    """`text` with the value of every secret-looking environment variable replaced by ***: a library's
    error message must not carry a credential into a log."""
    for name, value in os.environ.items():
        if len(value) >= 8 and _SECRET_NAMES.search(name) and value in text:
            text = text.replace(value, "***")
    return text


def _scheme(url: str) -> str:
    s = url.split("://", 1)[0].lower()
    return {"s3a": "s3", "gcs": "gs"}.get(s, s)


def explain(exc: BaseException, url: str, doing: str) -> str:
    """One line for a storage library's exception while `doing` something with `url`."""
    from tpt.storage import redact

    where = redact(url)
    hint = CREDENTIAL_HINT.get(_scheme(url), "the filesystem library's usual environment and config")
    name = type(exc).__name__
    detail = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else name)
    if isinstance(exc, PermissionError):
        return (
            f"{where}: access denied while {doing} ({detail}): wrong credentials or no permission; "
            f"tpt uses the credentials of {hint}: check them"
        )
    if name in ("NoCredentialsError", "PartialCredentialsError", "DefaultCredentialsError"):
        return f"{where}: no credentials found while {doing}: set {hint}"
    if name in (
        "EndpointConnectionError",
        "ClientConnectorError",
        "ConnectTimeoutError",
        "ConnectionError",
    ) or (isinstance(exc, OSError) and "connect" in detail.lower()):
        return f"{where}: cannot reach the storage endpoint while {doing} ({detail}); check AWS_ENDPOINT_URL / the network"
    if isinstance(exc, FileNotFoundError):
        return f"{where}: not found while {doing} ({detail}): check the bucket and the path"
    return f"{where}: storage error while {doing}: {name}: {detail}"


@contextlib.contextmanager
def remote_errors(url: str, doing: str) -> Iterator[None]:
    """Turn a storage library's exception (any OSError, botocore's) into a StorageError line."""
    try:
        yield
    except TptError:
        raise
    except FileNotFoundError:
        # as pathlib says it, so that callers that handle a missing file handle a missing object too
        from tpt.storage import redact

        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), redact(url)) from None
    except (OSError, ValueError) as exc:
        raise StorageError(explain(exc, url, doing)) from None
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in (
            "botocore",
            "aiobotocore",
            "aiohttp",
            "google",
            "huggingface_hub",
        ):
            raise StorageError(explain(exc, url, doing)) from None
        raise


class RemotePath:
    """An object (or a prefix of objects) on a remote filesystem, addressed by its URL."""

    __slots__ = ("url", "_size", "_fs", "_path")

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
        from tpt.storage import redact

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
    when it completes, so readers never see part of it)."""
    from tpt.storage.lease import check_commit

    check_commit(remote.url)
    with remote_errors(remote.url, "uploading it"):
        remote.fs.put_file(os.fspath(local), remote.path)


def download(remote: RemotePath, local: os.PathLike | str) -> None:
    """Copy one object to a local file (streamed, not held in memory)."""
    with remote_errors(remote.url, "downloading it"):
        remote.fs.get_file(remote.path, os.fspath(local))
