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
- `urls`: what a path argument is from its text (scheme, is_remote, redact); a leaf module.
- `errors`: `remote_errors`, which turns a storage library's exception into one line (StorageError).
- `readahead`: the bounded-memory, read-ahead reader of a remote object (any object with url, fs, path
  and size: it does not import `remote`).
- `remote`: RemotePath, and `upload`/`download` (transport only: no lock).
- `lease`: the output lock on object storage (a lease object created with a conditional put), and
  `upload_held`, the upload of a run that holds the output (the lease checked first).
- `shardfiles`: augment's shards on object storage, exactly once without rename: objects, then the
  records object that readers trust (`localshards`: the same seam on a local disk). The commit protocol
  that uses the seam is `tpt.augment.shardcommit`.

Their imports form no circle, not even through TYPE_CHECKING or function-level imports
(tests/core/test_storage_cycles.py): urls <- errors <- readahead <- remote <- lease <- shardfiles.
- `outputlock`: one writer per output directory (flock locally, `lease` on object storage).

Importing this package imports no filesystem library (fsspec comes with the first URL).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from tpt.storage.urls import check_local, is_remote, redact, scheme

if TYPE_CHECKING:
    from tpt.storage.remote import RemotePath

__all__ = ["as_path", "check_local", "display", "is_remote", "redact", "scheme"]


def as_path(spec: str | os.PathLike | RemotePath) -> Path | RemotePath:
    """A local Path for a plain path or file:// URL, else a RemotePath (the URL checked, not opened)."""
    if isinstance(spec, Path) or getattr(spec, "is_remote_path", False):
        return spec  # type: ignore[return-value]
    s = scheme(spec)
    text = os.fspath(spec)
    if s is None:
        return Path(text).expanduser()
    if s in ("file", "local"):
        return Path(text.split("://", 1)[1])
    from tpt.storage.remote import RemotePath  # a local run loads none of the remote machinery

    return RemotePath(text)


def display(spec: object) -> str:
    """A path or URL as it may appear in a message, a manifest or a log: without user:password@."""
    return redact(str(spec))
