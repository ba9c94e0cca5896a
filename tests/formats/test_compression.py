"""The one opener and line reader of JSONL files: plain, .gz and .zst read the same lines."""

from __future__ import annotations

import gzip

import pytest

from tpt.core.errors import InputError
from tpt.formats.compression import BOM, read_lines

LINES = b'{"text": "a"}\n\n  \n{"text": "\xc3\xa9"}\n'


def test_plain_gz_and_zst_read_the_same_numbered_non_blank_lines(tmp_path):
    zstandard = pytest.importorskip("zstandard")
    (tmp_path / "a.jsonl").write_bytes(BOM + LINES)
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(LINES))
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(LINES))
    want = [(1, b'{"text": "a"}\n'), (4, b'{"text": "\xc3\xa9"}\n')]
    for name in ("a.jsonl", "a.jsonl.gz", "a.jsonl.zst"):
        assert list(read_lines(tmp_path / name)) == want, name  # the byte order mark is not text


def test_an_unreadable_file_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match=r"^cannot read .*missing\.jsonl: "):
        list(read_lines(tmp_path / "missing.jsonl"))
