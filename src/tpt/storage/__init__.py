"""Where corpora and outputs live: local paths, or fsspec URLs on object storage (docs/object-storage.md).

`as_path(spec)` turns a command-line path into a `pathlib.Path` (a plain path or `file://` URL: the local
protocols stay as they are, rename and fsync included) or a `RemotePath` (`s3://`, `gs://`, `hf://`,
any other fsspec protocol) that offers the part of Path's interface the stages use: `name`, `/`,
`is_file()`, `is_dir()`, `rglob()`, `open("rb")` (streaming, with read-ahead), `read_bytes()`,
`write_bytes()` (one whole object: readers see the old object or the new one), `unlink()`.

- `filesystems`: the fsspec filesystem of a URL; a missing library is one line naming the tpt extra
  (`pip install 'tpt[s3]'`); credentials come only from each library's own environment and config
  (AWS_* / ~/.aws for s3fs, GOOGLE_APPLICATION_CREDENTIALS for gcsfs, HF_TOKEN for the Hub) and are
  never written anywhere by tpt; an endpoint (an S3-compatible store) from AWS_ENDPOINT_URL.
- `remote`: RemotePath, and `remote_errors`, which turns a storage library's exception into one line.
- `readahead`: the bounded-memory, read-ahead reader of a remote object.
- `lease`: the output lock on object storage (a lease object created with a conditional put).
- `commits`: exactly-once without rename: objects, then a commit object that readers trust.

Importing this package imports no filesystem library (fsspec comes with the first URL).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tpt.storage.remote import RemotePath

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def scheme(spec: str | os.PathLike) -> str | None:
    """The URL scheme of a path argument (`s3`, `file`, ...), or None for a plain path."""
    m = _SCHEME.match(os.fspath(spec)) if not isinstance(spec, Path) else None
    return m.group(1).lower() if m else None


def is_remote(spec: object) -> bool:
    """True for a RemotePath or a URL that is not file://."""
    from tpt.storage.remote import RemotePath

    if isinstance(spec, RemotePath):
        return True
    if isinstance(spec, str | os.PathLike):
        s = scheme(spec)
        return s is not None and s not in ("file", "local")
    return False


def as_path(spec: str | os.PathLike | RemotePath) -> Path | RemotePath:
    """A local Path for a plain path or file:// URL, else a RemotePath (the URL checked, not opened)."""
    from tpt.storage.remote import RemotePath

    if isinstance(spec, RemotePath | Path):
        return spec
    s = scheme(spec)
    text = os.fspath(spec)
    if s is None:
        return Path(text).expanduser()
    if s in ("file", "local"):
        return Path(text.split("://", 1)[1])
    return RemotePath(text)


_COLLAPSED = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):/[^/]")


def check_local(path: str | os.PathLike) -> None:
    """Refuse a local path that is a URL whose `//` was collapsed by pathlib (`Path("s3://b/x")` is
    `s3:/b/x`): writing there would make a directory named `s3:` instead of writing to the bucket."""
    text = os.fspath(path)
    if _COLLAPSED.match(text) and scheme(text.replace(":/", "://", 1)) not in (None, "file"):
        from tpt.errors import ConfigError

        raise ConfigError(
            f"{text} looks like a URL that lost its '//' (it was made a local path): pass the URL as a "
            "string, or through tpt.storage.as_path, not through pathlib.Path"
        )


def display(spec: object) -> str:
    """A path or URL as it may appear in a message, a manifest or a log: without user:password@."""
    return redact(str(spec))


_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")


def redact(text: str) -> str:
    """A URL without its user-info part (`s3://KEY:SECRET@bucket/x` -> `s3://bucket/x`)."""
    return _USERINFO.sub(r"\1", text)
