"""Augment's shard files in one local directory: the appended stage and the committed files side by side.

This implements the shard book's storage seam (augment/shards.py, `ShardFiles`) for a local shards
directory: appends are flushed (fsynced when the book asks), a commit writes the kept byte ranges of the
partial file to a temporary file, fsyncs it and renames it into place (POSIX rename is atomic), and only
then removes the partial file. The object-store implementation (shardfiles.py) keeps its partial files
in a local staging directory through this class too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

from tpt.core.artifacts import write_atomic


class LocalShardFiles:
    """ShardFiles in one local directory: appends flushed, commits fsynced and renamed into place."""

    def __init__(self, directory: Path) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def names(self, pattern: str) -> list[str]:
        return sorted(p.name for p in self.dir.glob(pattern))

    def exists(self, name: str) -> bool:
        return (self.dir / name).exists()

    def read(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()

    def write(self, name: str, data: bytes) -> None:
        write_atomic(self.dir / name, data)

    def append(self, name: str) -> BinaryIO:
        return open(self.dir / name, "ab")  # noqa: SIM115 - the open shard holds it

    def truncate(self, name: str, size: int) -> None:
        with open(self.dir / name, "r+b") as f:
            f.truncate(size)

    def close(self, handle: BinaryIO, *, sync: bool) -> None:
        handle.flush()
        if sync:
            os.fsync(handle.fileno())
        handle.close()

    def commit(self, partial: str, name: str, parts: list[tuple[int, int]]) -> None:
        data = (self.dir / partial).read_bytes()
        tmp = self.dir / f".{name}.tmp"
        try:
            with open(tmp, "wb") as f:
                f.write(b"".join(data[start:end] for start, end in parts))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.dir / name)
        except BaseException:  # disk full: the partial file stays, the next run commits it
            tmp.unlink(missing_ok=True)
            raise
        (self.dir / partial).unlink()

    def rename(self, src: str, dst: str) -> None:
        os.replace(self.dir / src, self.dir / dst)

    def delete(self, name: str) -> None:
        (self.dir / name).unlink(missing_ok=True)
