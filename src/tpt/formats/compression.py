"""Read a JSONL file as bytes whatever its compression: plain, `.gz` or `.zst` (the one opener and line reader)."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from pathlib import Path

from tpt.core.errors import InputError, MissingDependencyError

BOM = b"\xef\xbb\xbf"
"""A UTF-8 byte order mark: skipped at the start of a file, never part of the text."""
COMPRESSED_SUFFIXES = (".gz", ".zst")


def open_bytes(path: Path) -> io.BufferedIOBase:
    """A binary reader of the decompressed bytes (zstandard is imported only for a .zst file); `path` is a
    local Path or a tpt.storage.RemotePath."""
    name = path.name.lower()
    if name.endswith(".gz"):
        raw = _open_raw(path)
        gz = gzip.GzipFile(fileobj=raw, mode="rb")
        gz.myfileobj = raw  # closed with the reader, as gzip.open(path) does
        return gz  # type: ignore[return-value]
    if name.endswith(".zst"):
        try:
            import zstandard
        except ImportError:
            raise MissingDependencyError("zstandard", f"reading {path}") from None
        raw = _open_raw(path)  # closed through the reader
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
    return _open_raw(path)


def _open_raw(path: Path) -> io.BufferedIOBase:
    """The file's bytes as stored: a local file, or a remote object streamed with read-ahead
    (tpt.storage.RemotePath.open)."""
    return path.open("rb") if hasattr(path, "open") else open(path, "rb")  # noqa: SIM115


def read_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, bytes) of the non-blank lines, a leading byte order mark dropped."""
    try:
        f = open_bytes(path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    with f:
        for number, raw in enumerate(f, start=1):
            if number == 1 and raw.startswith(BOM):
                raw = raw[len(BOM) :]
            if raw.strip():
                yield number, raw
