"""The converted copy of a GGUF is named by its content, not by when it was installed."""

from __future__ import annotations

import os

from tpt.core.hfmodel import gguf_identity


def test_identity_follows_content_not_modification_time(tmp_path):
    a = tmp_path / "a.gguf"
    a.write_bytes(b"GGUF" + bytes(range(256)) * 40_000)
    first = gguf_identity(a)
    os.utime(a, (1, 1))  # a reinstall gives the file a new mtime
    copy = tmp_path / "copy.gguf"
    copy.write_bytes(a.read_bytes())
    assert gguf_identity(a) == first == gguf_identity(copy)
    changed = bytearray(a.read_bytes())
    changed[-1] ^= 1  # tensors sit at the end of the file
    b = tmp_path / "b.gguf"
    b.write_bytes(bytes(changed))
    assert gguf_identity(b) != first
