"""A streaming reader of one remote object with bounded memory and read-ahead.

The object is read in blocks of BLOCK bytes by ranged GETs; up to DEPTH blocks are requested ahead of
the reader, in parallel, so that a corpus streams at the store's bandwidth rather than one request
latency per block. Memory per open reader is at most (DEPTH + 1) x BLOCK (40 MiB by default), whatever
the object's size. TPT_READAHEAD_BLOCK_MB and TPT_READAHEAD_DEPTH change the two numbers.
"""

from __future__ import annotations

import io
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from tpt.storage.remote import remote_errors

if TYPE_CHECKING:
    from tpt.storage.remote import RemotePath

BLOCK = int(float(os.environ.get("TPT_READAHEAD_BLOCK_MB", "8")) * (1 << 20))
DEPTH = max(1, int(os.environ.get("TPT_READAHEAD_DEPTH", "4")))


class ReadAhead(io.RawIOBase):
    """Raw reader: `readinto` hands out the current block; the next DEPTH blocks are being fetched."""

    def __init__(self, remote: RemotePath, *, block: int = BLOCK, depth: int = DEPTH) -> None:
        super().__init__()
        self.remote = remote
        self.block, self.depth = block, depth
        self.total = remote.size  # from the listing when there was one, else one HEAD
        self._next = 0  # offset of the next block to request
        self._pending: deque[Future[bytes]] = deque()
        self._buf = memoryview(b"")
        self._pool: ThreadPoolExecutor | None = None
        self.requests = 0

    def readable(self) -> bool:
        return True

    def _fetch(self, start: int, end: int) -> bytes:
        with remote_errors(self.remote.url, "reading it"):
            return bytes(self.remote.fs.cat_file(self.remote.path, start=start, end=end))

    def _fill(self) -> None:
        if self._pool is None and self.total > self.block:
            self._pool = ThreadPoolExecutor(self.depth, thread_name_prefix="tpt-readahead")
        while len(self._pending) < self.depth and self._next < self.total:
            start, end = self._next, min(self._next + self.block, self.total)
            self._next = end
            self.requests += 1
            if self._pool is None:  # a small object: one GET, no thread
                done: Future[bytes] = Future()
                try:
                    done.set_result(self._fetch(start, end))
                except BaseException as exc:
                    done.set_exception(exc)
                self._pending.append(done)
            else:
                self._pending.append(self._pool.submit(self._fetch, start, end))

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
        if self._pool is not None:
            for fut in self._pending:
                fut.cancel()
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        self._pending.clear()
        self._buf = memoryview(b"")
        super().close()
