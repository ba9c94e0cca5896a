"""The output lock on object storage: a lease object, created only if absent, renewed while held.

An object store has no flock, and no lock dies with its holder. So the holder of `DIR/.tpt-lock` is
whoever created it with a conditional put (`If-None-Match: *`: of two runs that start at once, exactly
one put succeeds), and the lease it holds lasts TTL seconds from its last renewal (a thread renews it
every TTL/3 with `If-Match: <its ETag>`). Then:
- a second run while the holder lives fails at once, naming the holder (stage, pid, host, start);
- a holder killed with `kill -9` stops renewing: its lease is taken over when it expires (TTL, 120 s by
  default; TPT_LEASE_TTL_S changes it), or at once by a run on the same host that sees the holder's pid
  is gone. The take-over is a conditional put on the expired lease's ETag, so of two runs taking over
  one wins;
- a holder that could not renew in time (a stalled machine) learns it has lost the lease at its next
  commit (`check`) and stops with a clear error, instead of writing beside a new holder.
On S3 (and S3-compatible stores that honour conditional writes: moto, MinIO, R2) every step is atomic.
On other stores the create is their exclusive-create mode (gcsfs: ifGenerationMatch=0) and renewal and
take-over are plain writes: a take-over race there is possible (docs/object-storage.md).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from tpt.core.errors import TptError
from tpt.storage.errors import StorageError, remote_errors
from tpt.storage.remote import RemotePath, upload

TTL_ENV = "TPT_LEASE_TTL_S"
DEFAULT_TTL_S = 120.0


class LeaseLost(TptError):
    """This run's lease on its output was taken over: another run writes there now."""


def _ttl() -> float:
    try:
        return max(1.0, float(os.environ.get(TTL_ENV, DEFAULT_TTL_S)))
    except ValueError:
        return DEFAULT_TTL_S


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Lease:
    """A held lease on a remote output directory; `release()` deletes it."""

    def __init__(self, obj: RemotePath, stage: str, ttl: float) -> None:
        self.obj = obj
        self.stage = stage
        self.ttl = ttl
        self.token = uuid.uuid4().hex
        self.etag: str | None = None
        self.took_over: dict[str, Any] | None = None
        self.lost: str | None = None
        self.depth = 1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    # --- the lease object ----------------------------------------------------------------------------
    def _body(self) -> bytes:
        info = {
            "stage": self.stage,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": self.started_at,
            "token": self.token,
            "renewed_at": time.time(),
            "ttl_s": self.ttl,
        }
        return (json.dumps(info) + "\n").encode("utf-8")

    def _put(self, *, create: bool = False, if_match: str | None = None) -> None:
        fs, path = self.obj.fs, self.obj.path
        kwargs: dict[str, Any] = {}
        if if_match is not None and _is_s3(self.obj):
            kwargs["IfMatch"] = if_match
        fs.pipe_file(path, self._body(), **({"mode": "create"} if create else {}), **kwargs)
        self.etag = _etag(self.obj)

    def renew(self) -> None:
        """Extend the lease; a lease that is no longer ours is marked lost."""
        try:
            current = _read(self.obj)
            if current is None or current[0].get("token") != self.token:
                self.lost = "another run took it over" if current else "its lease object was deleted"
                return
            self._put(if_match=current[1])
        except Exception as exc:  # a failed renewal is retried at the next beat; the TTL has slack
            print(f"tpt {self.stage}: could not renew the lease on {self.obj.parent} ({type(exc).__name__})",
                  file=sys.stderr)  # fmt: skip

    def _beat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            self.renew()
            if self.lost:
                return

    def check(self) -> None:
        """Raise LeaseLost if another run holds this output now (called before each commit)."""
        if self.lost:
            raise LeaseLost(
                f"{self.obj.parent}: this run lost its lease ({self.lost}, after it could not renew it for "
                f"{self.ttl:.0f} s); another run writes there now, so this one stops. Nothing committed is "
                "lost; re-run when that run has finished"
            )

    def release(self) -> None:
        with _GUARD:
            self.depth -= 1
            if self.depth > 0:
                return
            _HELD.pop(self.obj.url, None)
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.lost:
            return
        try:
            current = _read(self.obj)
            if current is not None and current[0].get("token") == self.token:
                self.obj.unlink(missing_ok=True)
        except TptError:
            pass  # the lease expires by itself

    def __enter__(self) -> Lease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_HELD: dict[str, Lease] = {}
_GUARD = threading.Lock()


def _is_s3(obj: RemotePath) -> bool:
    return obj.scheme.lower() in ("s3", "s3a")


def _etag(obj: RemotePath) -> str | None:
    info = obj.fs.info(obj.path)
    return info.get("ETag") or info.get("etag") or info.get("generation")


def _read(obj: RemotePath) -> tuple[dict[str, Any], str | None] | None:
    """(holder record, ETag) of the lease object, or None when there is none."""
    with remote_errors(obj.url, "reading the output's lease"):
        try:
            data = obj.fs.cat_file(obj.path)
            etag = _etag(obj)
        except FileNotFoundError:
            return None
    try:
        info = json.loads(data.decode("utf-8", "replace"))
    except ValueError:
        info = {"unreadable": True}
    return (info if isinstance(info, dict) else {"unreadable": True}), etag


def held(url_prefix: str) -> list[Lease]:
    """The leases this process holds on outputs that `url_prefix` lies in."""
    with _GUARD:
        return [
            lease for lease in _HELD.values() if url_prefix.startswith(lease.obj.parent.url.rstrip("/") + "/")
        ]


def check_commit(url: str) -> None:
    """Before a commit under `url`: raise LeaseLost if this process's lease on that output is lost."""
    for lease in held(url):
        lease.check()


def upload_held(local: os.PathLike | str, remote: RemotePath) -> None:
    """Upload a local file as one object under an output this process holds the lease of: raise
    LeaseLost first if that lease is lost (so a run that lost its output stops before it writes)."""
    check_commit(remote.url)
    upload(local, remote)


def acquire(
    directory: RemotePath,
    *,
    stage: str,
    name: str,
    busy: type[TptError],
    busy_message: Callable[[Any, dict[str, Any] | None], str],
    describe_holder: Callable[[dict[str, Any] | None], str],
) -> Lease:
    """Take the lease of a remote output directory (re-entrant within one process). outputlock passes
    its error class and its wording of a holder, so that both locks say it alike."""
    obj = directory / name
    with _GUARD:
        if (lease := _HELD.get(obj.url)) is not None:
            lease.depth += 1
            return lease
    ttl = _ttl()
    lease = Lease(obj, stage, ttl)
    with remote_errors(obj.url, "creating the output's lease"):
        try:
            lease._put(create=True)
        except FileExistsError:
            current = _read(obj)
            if current is None:  # released between our put and our read: try once more
                try:
                    lease._put(create=True)
                    current = None
                except FileExistsError:
                    current = _read(obj)
            if current is not None:
                holder, etag = current
                if not _expired(holder):
                    until = holder.get("renewed_at", 0) + holder.get("ttl_s", ttl)
                    raise busy(
                        busy_message(directory, holder)
                        + f" (if it was killed, its lease on this object store expires at "
                        f"{time.strftime('%H:%M:%S UTC', time.gmtime(until))}; re-run then)"
                    ) from None
                try:
                    if _is_s3(obj):
                        lease._put(if_match=etag)
                    else:
                        obj.fs.rm_file(obj.path)
                        lease._put(create=True)
                except (FileExistsError, OSError):
                    raise busy(busy_message(directory, _read(obj) and _read(obj)[0])) from None
                lease.took_over = holder
                print(
                    f"tpt {stage}: took over the lease of {directory} from {describe_holder(holder)}, which "
                    "ended without releasing it (killed?); its unfinished work is redone",
                    file=sys.stderr,
                )
    lease._thread = threading.Thread(target=lease._beat, name="tpt-lease", daemon=True)
    lease._thread.start()
    with _GUARD:
        _HELD[obj.url] = lease
    return lease


def _expired(holder: dict[str, Any]) -> bool:
    if holder.get("unreadable"):
        return True
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        if holder["pid"] == os.getpid() or not _pid_alive(holder["pid"]):  # not held here (_HELD)
            return True  # its holder is gone: no need to wait out the lease
    try:
        return time.time() > float(holder["renewed_at"]) + float(holder["ttl_s"])
    except (KeyError, TypeError, ValueError):
        return True


__all__ = ["Lease", "LeaseLost", "StorageError", "acquire", "check_commit", "held", "upload_held"]
