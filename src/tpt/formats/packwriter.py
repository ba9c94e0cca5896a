"""PACK_DIR's shard writer (`tpt pack` writes with it; tests and fixtures too): rows go to the open
shard's files as they come, so memory holds no shard.

A buffered writer held a whole shard (by default 16 M tokens: 7 bytes a token with kinds and segments,
about 117 MB, twice while it concatenated) before writing it; pack's peak RSS grew with the corpus until
the first shard was full (159 MiB at 10^4 documents, 499 MiB at 10^5: docs/pack.md). `ShardWriter` writes
the same bytes (`np.save`'s header, then the C-order data) without holding them: each part of the open
shard is a file `.shard-XXXXX.PART.npy.open`, its header written for a full shard first and rewritten for
the rows it got when the shard is closed (a short last shard), then renamed into place, so a reader
never sees half a shard.

Resumable (pack/commits.py): `sync()` flushes the open files before a commit, the pickled writer keeps
the count of rows in the open shard, and a resumed writer cuts the open files back to that count and goes
on appending. A resumed pack keeps the open files (pack/stage.py `_prepare_output`).
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tpt.formats.packfile import (
    KIND_DTYPE,
    PARTS,
    SEGMENT_DTYPE,
    TOKEN_DTYPES,
    RowBlock,
    ShardEntry,
    part_path,
    shard_name,
)


def npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    """The header np.save writes before a C-order array of this dtype and shape."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


def open_path(out_dir: Path, shard: int, part: str) -> Path:
    """Where part `part` of shard number `shard` is written while it is open."""
    final = part_path(out_dir, shard_name(shard), part)
    return final.with_name(f".{final.name}.open")


def reopen_shard(out_dir: Path, shard: int) -> None:
    """Make a shard closed after the last commit open again (its files back at their open names; the
    resumed writer cuts them back to the committed rows and rewrites the header when it closes it)."""
    for part in PARTS:
        path, final = open_path(out_dir, shard, part), part_path(out_dir, shard_name(shard), part)
        if not path.exists() and final.exists():
            os.replace(final, path)


def open_shard_intact(out_dir: Path, shard: int, rows: int, seq_len: int) -> bool:
    """Whether the open shard's files hold at least `rows` rows (the token dtype taken at its smallest)."""
    for part, dtype in (("tokens", TOKEN_DTYPES[0]), ("kinds", KIND_DTYPE), ("segments", SEGMENT_DTYPE)):
        path = open_path(out_dir, shard, part)
        least = len(npy_header(dtype, (rows, seq_len))) + rows * seq_len * dtype.itemsize
        if not path.is_file() or path.stat().st_size < least:
            return False
    return True


class ShardWriter:
    """Rows into shards of `rows_per_shard` rows (the last one shorter), written as they come."""

    def __init__(self, out_dir: Path, *, seq_len: int, dtype: np.dtype, rows_per_shard: int) -> None:
        self.out_dir, self.seq_len, self.dtype = Path(out_dir), seq_len, np.dtype(dtype)
        if self.dtype not in TOKEN_DTYPES:
            raise ValueError(f"token dtype {self.dtype} is not one of {[d.name for d in TOKEN_DTYPES]}")
        self.rows_per_shard = max(1, rows_per_shard)
        self.shards: list[ShardEntry] = []
        """index.json's `shards`: {"name", "rows"} per shard closed."""
        self.kind_counts = np.zeros(256, dtype=np.int64)
        """Tokens of each kind written so far, counted from the arrays themselves."""
        self.open_rows = 0
        """Rows in the open shard (not yet in `shards`)."""
        self._files: dict[str, BinaryIO] | None = None

    def _dtypes(self) -> dict[str, np.dtype]:
        return {"tokens": self.dtype, "kinds": KIND_DTYPE, "segments": SEGMENT_DTYPE}

    @property
    def num_rows(self) -> int:
        return sum(s["rows"] for s in self.shards) + self.open_rows

    def add(self, rows: RowBlock) -> None:
        n, i = len(rows.tokens), 0
        while i < n:
            files = self._open()
            take = min(n - i, self.rows_per_shard - self.open_rows)
            for part, dtype in self._dtypes().items():
                block = getattr(rows, part)[i : i + take]
                files[part].write(np.ascontiguousarray(block.astype(dtype, copy=False)).tobytes())
            self.kind_counts += np.bincount(rows.kinds[i : i + take].ravel(), minlength=256)
            self.open_rows += take
            i += take
            if self.open_rows == self.rows_per_shard:
                self._close_shard()

    def close(self) -> list[ShardEntry]:
        if self.open_rows:
            self._close_shard()
        return self.shards

    def sync(self) -> None:
        """Flush the open shard's files to disk (before a commit records `open_rows`)."""
        for f in (self._files or {}).values():
            f.flush()
            os.fsync(f.fileno())

    def abort(self) -> None:
        """Close the open files as they are (a resumed run cuts them back to its commit)."""
        for f in (self._files or {}).values():
            f.close()
        self._files = None

    def _header(self, part: str, rows: int) -> bytes:
        return npy_header(self._dtypes()[part], (rows, self.seq_len))

    def _open(self) -> dict[str, BinaryIO]:
        """The open shard's files: new ones, or a resumed run's cut back to `open_rows`."""
        if self._files is not None:
            return self._files
        files: dict[str, BinaryIO] = {}
        for part, dtype in self._dtypes().items():
            path = open_path(self.out_dir, len(self.shards), part)
            header = self._header(part, self.rows_per_shard)
            if self.open_rows == 0:
                f = open(path, "wb")
                f.write(header)
            else:
                f = open(path, "r+b")
                f.truncate(len(header) + self.open_rows * self.seq_len * dtype.itemsize)
                f.seek(0, os.SEEK_END)
            files[part] = f
        self._files = files
        return files

    def _close_shard(self) -> None:
        assert self._files is not None
        name, rows = shard_name(len(self.shards)), self.open_rows
        for part in PARTS:
            f = self._files[part]
            header = self._header(part, rows)
            if len(header) == len(self._header(part, self.rows_per_shard)):
                f.seek(0)
                f.write(header)
                f.close()
            else:  # another header length (numpy leaves room for this): copy the data behind the new one
                f.close()
                full = len(self._header(part, self.rows_per_shard))
                _rewrite(open_path(self.out_dir, len(self.shards), part), full, header)
            os.replace(open_path(self.out_dir, len(self.shards), part), part_path(self.out_dir, name, part))
        self._files = None
        self.open_rows = 0
        self.shards.append({"name": name, "rows": rows})

    def __getstate__(self) -> dict[str, object]:
        state = {k: getattr(self, k) for k in ("out_dir", "seq_len", "dtype", "rows_per_shard", "shards")}
        return {**state, "kind_counts": self.kind_counts, "open_rows": self.open_rows}

    def __setstate__(self, state: dict[str, object]) -> None:
        for k, v in state.items():
            setattr(self, k, v)
        self._files = None


def _rewrite(path: Path, old_header: int, header: bytes) -> None:
    tmp = path.with_name(path.name + ".rewrite")
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        dst.write(header)
        src.seek(old_header)
        shutil.copyfileobj(src, dst, 1 << 20)
    os.replace(tmp, path)
