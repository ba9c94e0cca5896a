"""A streaming reader of one remote object with bounded memory and read-ahead.

The object is read in blocks of BLOCK bytes by ranged GETs; up to DEPTH blocks are requested ahead of
the reader, in parallel, so that a corpus streams at the store's bandwidth rather than one request
latency per block. Across objects, `prefetch(next)` requests the first block of the next object of a
corpus while the current one is read (corpus.iter_items does it), so a corpus of many small files does
not pay one round trip per file either. Memory per open reader is at most (DEPTH + 1) x BLOCK (40 MiB
by default), plus one prefetched block, whatever the object's size. TPT_READAHEAD_BLOCK_MB and
TPT_READAHEAD_DEPTH change the two numbers.
"""

from __future__ import annotations

import io
import os
import threading
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from tpt.storage.errors import remote_errors


class RemoteObject(Protocol):
    """What this reader needs of an object: remote.RemotePath is one (this module imports it not, so
    that remote -> readahead is the only arrow between the two)."""

    @property
    def url(self) -> str: ...

    @property
    def fs(self) -> Any: ...

    @property
    def path(self) -> str: ...

    @property
    def size(self) -> int: ...


BLOCK = int(float(os.environ.get("TPT_READAHEAD_BLOCK_MB", "8")) * (1 << 20))
DEPTH = max(1, int(os.environ.get("TPT_READAHEAD_DEPTH", "4")))
PREFETCHED_MAX = 2
"""First blocks requested ahead for objects not opened yet (the next file of a corpus)."""

_POOL: ThreadPoolExecutor | None = None
_LOCK = threading.Lock()
_PREFETCHED: OrderedDict[tuple[str, int], Future[bytes]] = OrderedDict()


def _pool() -> ThreadPoolExecutor:
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(2 * DEPTH, thread_name_prefix="tpt-readahead")
        return _POOL


def _fetch(remote: RemoteObject, start: int, end: int) -> bytes:
    with remote_errors(remote.url, "reading it"):
        return bytes(remote.fs.cat_file(remote.path, start=start, end=end))


def prefetch(remote: RemoteObject, *, block: int = BLOCK) -> None:
    """Request the first block of an object that will be opened soon (a failure shows when it is read)."""
    end = min(block, remote.size)
    if end <= 0:
        return
    with _LOCK:
        if (remote.url, end) in _PREFETCHED:
            return
    fut = _pool().submit(_fetch, remote, 0, end)
    with _LOCK:
        _PREFETCHED[(remote.url, end)] = fut
        while len(_PREFETCHED) > PREFETCHED_MAX:
            _PREFETCHED.popitem(last=False)[1].cancel()


def _take_prefetched(url: str, end: int) -> Future[bytes] | None:
    with _LOCK:
        return _PREFETCHED.pop((url, end), None)


class ReadAhead(io.RawIOBase):
    """Raw reader: `readinto` hands out the current block; the next DEPTH blocks are being fetched."""

    def __init__(self, remote: RemoteObject, *, block: int = BLOCK, depth: int = DEPTH) -> None:
        super().__init__()
        self.remote = remote
        self.block, self.depth = block, depth
        self.total = remote.size  # from the listing when there was one, else one HEAD
        self._next = 0  # offset of the next block to request
        self._pending: deque[Future[bytes]] = deque()
        self._buf = memoryview(b"")
        self.requests = 0
        """Ranged GETs this reader made (a prefetched first block is not one of them)."""

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while len(self._pending) < self.depth and self._next < self.total:
            start, end = self._next, min(self._next + self.block, self.total)
            self._next = end
            fut = _take_prefetched(self.remote.url, end) if start == 0 else None
            if fut is None:
                self.requests += 1
                fut = _pool().submit(_fetch, self.remote, start, end)
            self._pending.append(fut)

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if not self._buf:
            self._fill()
            if not self._pending:
                return 0
            self._buf = memoryview(self._pending.popleft().result())
            self._fill()
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n

    def close(self) -> None:
        for fut in self._pending:
            fut.cancel()
        self._pending.clear()
        self._buf = memoryview(b"")
        super().close()
