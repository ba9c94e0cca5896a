"""validate's merge copies the parts in the kernel (copy_file_range), and falls back to a plain copy."""

from __future__ import annotations

import errno
import os

import pytest

from tpt.validate.units import append_file


def _parts(tmp_path, sizes):
    paths = []
    for i, n in enumerate(sizes):
        p = tmp_path / f"{i}.jsonl"
        p.write_bytes(bytes((i + j) % 251 for j in range(n)))
        paths.append(p)
    return paths


def _merge(paths, dst):
    with open(dst, "wb") as out:
        out.write(b"head\n")  # the merge appends after what the file already holds
        for p in paths:
            with open(p, "rb") as src:
                append_file(src, out)
    return dst.read_bytes()


def test_kernel_copy_concatenates(tmp_path):
    paths = _parts(tmp_path, [0, 1, 3 << 20, 17])
    assert _merge(paths, tmp_path / "out") == b"head\n" + b"".join(p.read_bytes() for p in paths)


@pytest.mark.parametrize("fails_after", [0, 1])
def test_falls_back_where_the_kernel_cannot(tmp_path, monkeypatch, fails_after):
    """EXDEV (another filesystem) on the first call, or after a first partial copy: the rest is copied."""
    real, calls = os.copy_file_range, []

    def flaky(src, dst, count, offset_src, offset_dst):
        calls.append(count)
        if len(calls) > fails_after:
            raise OSError(errno.EXDEV, "cross-device")
        return real(src, dst, min(count, 1000), offset_src, offset_dst)

    monkeypatch.setattr(os, "copy_file_range", flaky)
    paths = _parts(tmp_path, [5000, 3])
    assert _merge(paths, tmp_path / "out") == b"head\n" + b"".join(p.read_bytes() for p in paths)
    assert calls
