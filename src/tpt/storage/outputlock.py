"""One writer per output directory: an exclusive lock that the kernel releases when its holder dies.

Every stage that writes an output directory holds `DIR/.tpt-lock` for its whole run (`tpt eval`, which
writes a results file, holds `.<FILE>.tpt-lock` beside it). The lock is `flock(LOCK_EX | LOCK_NB)` on
that file, so:
- a second process on the same directory fails at once with a line that names the holder (stage, pid,
  host, start time, written into the file by the holder) and what to do;
- a holder that is killed (`kill -9`, OOM, a node reboot) loses the lock with its last file descriptor:
  no stale pid file, the next run simply takes it (and says whose it took over);
- a stage that calls another stage's entry point on the same directory (the CLI, then `stage.run`)
  re-enters its own lock instead of locking itself out.

What holds where is in docs/architecture.md ("One writer per output directory"): local filesystems and
NFSv4 (Linux emulates flock with POSIX locks there) across machines; Lustre only when mounted with
`-o flock`. Where locks are not supported at all the stage refuses to start unless TPT_OUTPUT_LOCK=off.
An output on object storage (s3://...) is locked by a lease object instead (tpt.storage.lease).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tpt.core.errors import TptError

LOCK_NAME = ".tpt-lock"
DISABLE_ENV = "TPT_OUTPUT_LOCK"
"""TPT_OUTPUT_LOCK=off runs without the lock (a filesystem without working locks; at your own risk)."""


class OutputBusyError(TptError):
    """Another live process holds the output directory."""


class OutputLock:
    """A held lock; `release()` (or leaving the `with` block) gives it back."""

    def __init__(self, path: Path, fd: int | None, stage: str) -> None:
        self.path = path
        self.fd = fd
        self.stage = stage
        self.depth = 1
        self.took_over: dict[str, Any] | None = None
        """The holder record a killed process left behind, when this lock was taken over from it."""

    def release(self) -> None:
        with _GUARD:
            self.depth -= 1
            if self.depth > 0:
                return
            _HELD.pop(_key(self.path), None)
            if self.fd is not None:
                try:
                    os.ftruncate(self.fd, 0)  # a clean release leaves no holder record behind
                except OSError:
                    pass
                os.close(self.fd)  # releases the flock
                self.fd = None

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_HELD: dict[str, OutputLock] = {}
_GUARD = threading.Lock()


def _key(path: Path) -> str:
    return str(Path(path).resolve())


def _after_fork_in_child() -> None:
    # A forked child (pack workers) shares the parent's open file description, and with it the flock:
    # drop our descriptors so that the lock goes when the parent goes, not when its last child does.
    for lock in _HELD.values():
        if lock.fd is not None:
            try:
                os.close(lock.fd)
            except OSError:
                pass
            lock.fd = None
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def lock_output_dir(directory: str | os.PathLike, *, stage: str, name: str = LOCK_NAME) -> OutputLock:
    """Take the exclusive lock of an output directory (created if missing) for `tpt <stage>`.

    Raises OutputBusyError when another process holds it. Re-entrant within one process: a nested
    call returns the same lock, released when the outermost holder releases it. A URL on object
    storage gets a lease (tpt.storage.lease) with the same behaviour."""
    from tpt.storage import as_path, check_local, is_remote

    if is_remote(directory) and os.environ.get(DISABLE_ENV, "").lower() not in ("off", "0", "no", "false"):
        from tpt.storage.lease import acquire

        return acquire(  # type: ignore[return-value]
            as_path(directory),  # type: ignore[arg-type]
            stage=stage,
            name=name,
            busy=OutputBusyError,
            busy_message=_busy_message,
            describe_holder=_describe,
        )
    if is_remote(directory):
        return OutputLock(Path(LOCK_NAME), None, stage)
    check_local(directory)  # never a directory named `s3:` for a URL that went through Path()
    directory = Path(directory)
    from tpt.core.machine_errors import ensure_dir

    ensure_dir(directory, what="output directory")
    path = directory / name
    key = _key(path)
    with _GUARD:
        held = _HELD.get(key)
        if held is not None:
            held.depth += 1
            return held
        if os.environ.get(DISABLE_ENV, "").lower() in ("off", "0", "no", "false"):
            lock = OutputLock(path, None, stage)
            _HELD[key] = lock
            return lock
        lock = _acquire(path, stage)
        _HELD[key] = lock
        return lock


def lock_output_file(file: str | os.PathLike, *, stage: str) -> OutputLock:
    """The lock of one output file (`tpt eval --output FILE`): `.<FILE name>.tpt-lock` beside it."""
    file = Path(file)
    return lock_output_dir(file.parent, stage=stage, name=f".{file.name}{LOCK_NAME}")


def _acquire(path: Path, stage: str) -> OutputLock:
    import fcntl

    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        from tpt.core.machine_errors import MachineError, describe

        raise MachineError(f"cannot open the lock file of the output directory: {describe(exc)}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            raise OutputBusyError(_busy_message(path.parent, holder)) from None
        except OSError as exc:
            if exc.errno in (errno.ENOLCK, errno.ENOSYS, errno.EOPNOTSUPP, errno.EINVAL):
                raise TptError(
                    f"cannot lock {path}: the filesystem does not support file locks ({exc.strerror}; "
                    "Lustre needs the client mount option -o flock, NFSv3 needs a running lockd). "
                    f"Choose an --output on a filesystem with locks, or set {DISABLE_ENV}=off and make "
                    "sure yourself that no second run writes there"
                ) from None
            raise
        previous = _read_holder(fd)
        info = {
            "stage": stage,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
    except BaseException:
        os.close(fd)
        raise
    lock = OutputLock(path, fd, stage)
    if previous:
        lock.took_over = previous
        print(
            f"tpt {stage}: took over the lock of {path.parent} from {_describe(previous)}, which ended "
            "without releasing it (killed?); its unfinished work is redone",
            file=sys.stderr,
        )
    return lock


def _read_holder(fd: int) -> dict[str, Any] | None:
    try:
        data = os.pread(fd, 4096, 0)
    except OSError:
        return None
    if not data.strip():
        return None
    try:
        info = json.loads(data.decode("utf-8", "replace").splitlines()[0])
    except (ValueError, IndexError):
        return {"unreadable": True}
    return info if isinstance(info, dict) else {"unreadable": True}


def _describe(holder: dict[str, Any] | None) -> str:
    if not holder or holder.get("unreadable"):
        return "another process (its holder record is unreadable)"
    return (
        f"`tpt {holder.get('stage', '?')}` (pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, "
        f"started {holder.get('started_at', '?')})"
    )


def _busy_message(directory: Path, holder: dict[str, Any] | None) -> str:
    same_host = bool(holder) and holder.get("host") == socket.gethostname()
    stop = f"`kill {holder.get('pid')}`" if same_host and holder.get("pid") else "stop that run"
    return (
        f"{directory} is in use by {_describe(holder)}; two writers would duplicate and corrupt its "
        f"output. Wait for that run to finish (or {stop}), then re-run this command to continue; "
        "or choose another --output"
    )
