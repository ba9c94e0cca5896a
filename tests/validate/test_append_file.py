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


def test_a_merge_killed_before_its_rename_leaves_no_temporary_file(tmp_path):
    """A merge task SIGKILLed mid-copy leaves `.kept.jsonl.<host>-<pid>.tmp`; the merge that completes
    removes it (a worker's name is never reused, so nothing else would)."""
    from tpt.validate.units import UnitBook, merge_parts

    book = UnitBook(tmp_path / "parts", {"config": {}, "files": []})
    for unit in range(2):
        for kind in ("kept", "rejected"):
            book.path(unit, kind).write_bytes(f"{kind} {unit}\n".encode())
    for kind in ("kept", "rejected"):
        (tmp_path / f".{kind}.jsonl.deadhost-1.tmp").write_bytes(b"half a cop")
    merge_parts(str(book.dir), str(tmp_path), 2, True)
    assert (tmp_path / "kept.jsonl").read_bytes() == b"kept 0\nkept 1\n"
    assert (tmp_path / "rejected.jsonl").read_bytes() == b"rejected 0\nrejected 1\n"
    assert not list(tmp_path.glob(".*.tmp"))
