"""Open a JSONL file as bytes whatever its compression: plain, `.gz` or `.zst` (the one opener)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from tpt.errors import MissingDependencyError

BOM = b"\xef\xbb\xbf"
"""A UTF-8 byte order mark: skipped at the start of a file, never part of the text."""
COMPRESSED_SUFFIXES = (".gz", ".zst")


def open_bytes(path: Path) -> io.BufferedIOBase:
    """A binary reader of the decompressed bytes (zstandard is imported only for a .zst file)."""
    name = path.name.lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if name.endswith(".zst"):
        try:
            import zstandard
        except ImportError:
            raise MissingDependencyError("zstandard", f"reading {path}") from None
        raw = open(path, "rb")  # noqa: SIM115 - closed through the reader
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
    return open(path, "rb")  # noqa: SIM115
