"""Input ranges that a Ray worker reads itself: where each output shard's items lie in the input files.

Shard k holds input items [k*S, (k+1)*S) of the corpus stream (formats/corpus.py: every file's items in
order, blank lines not items). A worker indexes one input file (`index_file`: its item count and, for
an uncompressed JSONL file, the byte offset of every S-th item); the driver, from those counts alone
(O(files + shards) numbers), names each shard's segments: (file, first global index, first item in the
file, items, and the nearest indexed byte offset before it). `read_segment` yields exactly the Items
`iter_items` would give for that stretch (same index, file, line and raw value), by seeking to the
offset; a compressed or columnar file has no cheap seek and is read from its start up to the segment.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from tpt.formats.compression import BOM, read_lines
from tpt.formats.corpus import ARROW_SUFFIXES, PARQUET_SUFFIXES, Item, _iter_file
from tpt.storage import as_path, is_remote

Checkpoint = tuple[int, int, int]
"""(item within the file, its 1-based line number, its byte offset)."""
Segment = tuple[str, int, int, int, Checkpoint | None]
"""(file, global index of the first item, first item within the file, items, checkpoint to seek to)."""


def seekable(name: str) -> bool:
    """A plain (uncompressed) line file: its items can be reached by a byte offset."""
    name = name.lower()
    return not name.endswith((".gz", ".zst", *PARQUET_SUFFIXES, *ARROW_SUFFIXES))


def index_file(file: str, stride: int) -> tuple[int, list[Checkpoint]]:
    """(items in the file, a checkpoint every `stride` items: none for a file that cannot seek)."""
    path = as_path(file)
    if not seekable(path.name):
        return sum(1 for _ in _iter_file(path)), []
    checkpoints: list[Checkpoint] = []
    count, offset = 0, 0
    with _open(path) as f:
        for number, raw in enumerate(f, start=1):
            line = raw[len(BOM) :] if number == 1 and raw.startswith(BOM) else raw
            if not line.isspace():
                if count % stride == 0:
                    checkpoints.append((count, number, offset))
                count += 1
            offset += len(raw)
    return count, checkpoints


def plan_segments(
    files: list[str], counts: list[int], checkpoints: list[list[Checkpoint]], start: int, end: int
) -> list[Segment]:
    """The segments of global items [start, end) over the files."""
    segments: list[Segment] = []
    prefix = 0
    for file, n, marks in zip(files, counts, checkpoints, strict=True):
        lo, hi = max(start, prefix), min(end, prefix + n)
        if lo < hi:
            local = lo - prefix
            mark = None
            if marks:
                stride = marks[1][0] if len(marks) > 1 else n or 1
                mark = marks[min(local // stride, len(marks) - 1)]
                if mark[0] > local:  # defensive: never past the first wanted item
                    mark = marks[0]
            segments.append((file, lo, local, hi - lo, mark))
        prefix += n
        if prefix >= end:
            break
    return segments


def read_segment(segment: Segment) -> Iterator[Item]:
    """The Items of one segment, as iter_items gives them."""
    file, first, local, n, mark = segment
    path = as_path(file)
    if mark is None:
        lines: Iterator[tuple[int, Any]] = _iter_file(path)
        at = 0
    else:
        lines = _lines_from(path, mark)
        at = mark[0]
    for line, raw in lines:
        if at >= local + n:
            break
        if at >= local:
            yield Item(index=first + at - local, file=file, line=line, raw=raw)
        at += 1
    if hasattr(lines, "close"):
        lines.close()  # type: ignore[union-attr]


def _lines_from(path: Any, mark: Checkpoint) -> Iterator[tuple[int, str | bytes]]:
    """(line number, text) of the non-blank lines from a checkpoint on, as read_lines + _iter_file."""
    if mark[2] == 0:
        for number, raw in read_lines(path):
            yield number, _text(raw)
        return
    with _open(path) as f:
        f.seek(mark[2])
        for number, raw in enumerate(f, start=mark[1]):
            if not raw.isspace():
                yield number, _text(raw)


def _text(raw: bytes) -> str | bytes:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


def _open(path: Any) -> Any:
    if is_remote(path):
        import io

        f = path.open("rb+seek")
        return f if hasattr(f, "readline") else io.BufferedReader(f)
    return open(path, "rb")
