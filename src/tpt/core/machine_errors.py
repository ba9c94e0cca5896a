"""Errors of the machine (disk full, permission denied, a missing directory) as one line that says what to do.

The CLI turns any OSError that reaches it into such a line (`describe`) and exits 2; stages that create
their output directory go through `ensure_dir`, which names the directory and what it is for. Every
stage writes so that a failure at any moment leaves nothing a re-run cannot settle (augment commits
whole shards by rename, the others write to temporary files and rename), so the advice is always the
same: fix the cause, re-run the same command.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from tpt.core.errors import TptError

RERUN = "then re-run the same command (finished work is kept)"
_ADVICE: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("disk full", f"free space there or choose an --output on another disk, {RERUN}"),
    errno.EDQUOT: ("disk quota exceeded", f"free space or raise the quota, {RERUN}"),
    errno.EACCES: ("permission denied", f"give this user access to it or choose another path, {RERUN}"),
    errno.EPERM: ("operation not permitted", f"give this user access to it or choose another path, {RERUN}"),
    errno.EROFS: ("read-only filesystem", f"choose a path on a writable filesystem, {RERUN}"),
    errno.ENOENT: (
        "no such file or directory",
        f"create it or correct the path (was it deleted during the run?), {RERUN}",
    ),
    errno.ENOTDIR: ("not a directory", f"a part of the path is a file; correct the path, {RERUN}"),
    errno.EISDIR: ("is a directory", f"give a file path here, {RERUN}"),
    errno.EEXIST: ("exists and is not a directory", f"choose another path, {RERUN}"),
    errno.EMFILE: ("too many open files", f"raise the limit (ulimit -n), {RERUN}"),
    errno.ENFILE: ("too many open files on the system", f"close other programs' files, {RERUN}"),
    errno.EIO: ("input/output error", f"check the disk or the network filesystem, {RERUN}"),
    errno.ENOMEM: ("out of memory", f"free memory or use smaller batches, {RERUN}"),
}


class MachineError(TptError):
    """A resource of the machine failed (disk, permissions, a directory); the message says what to do."""


def describe(exc: OSError, where: str | os.PathLike | None = None) -> str:
    """One line for an OSError: what failed, at which path, and what to do.

    `where` names the place when the error carries no path (a write to an open file): the stage's
    output directory."""
    path = exc.filename if exc.filename is not None else where
    what, advice = _ADVICE.get(exc.errno or -1, (exc.strerror or type(exc).__name__, RERUN))
    name = errno.errorcode.get(exc.errno or -1)
    at = f" at {os.fsdecode(path)}" if path is not None else ""
    if exc.filename2 is not None:
        at += f" -> {os.fsdecode(exc.filename2)}"
    where_note = " (while writing under it)" if exc.filename is None and where is not None else ""
    return f"{what}{f' ({name})' if name else ''}{at}{where_note}: {advice[0].upper()}{advice[1:]}"


def ensure_dir(path: str | os.PathLike, *, what: str = "output directory") -> Path:
    """Create a directory (and its parents) or say in one line why it cannot be."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise MachineError(f"{what} {path} exists and is not a directory: choose another path") from None
    except OSError as exc:
        raise MachineError(f"cannot create the {what}: {describe(exc)}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise MachineError(
            f"cannot write the {what} {path}: permission denied (EACCES): give this user write "
            "access to it or choose another path"
        )
    return path
