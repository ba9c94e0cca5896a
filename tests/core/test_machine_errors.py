"""Errors of the machine are one clear line (path, what to do), exit 2, and a re-run settles the rest.

Disk full is tested on a real full filesystem (a 256 KiB tmpfs, when this test may mount one: root on
Linux) and, everywhere, by injecting ENOSPC into the shard writes. Permission denied runs the command as
an unprivileged user when the tests run as root (root ignores file modes). A missing directory is the
output's shards directory deleted under a running `tpt augment`.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tpt.cli import main
from tpt.testing.openai_stub import StubConfig, StubServer
from tpt.testing.openai_stub import augment_argv as stub_augment_argv


def corpus(path: Path, n: int, words: int = 40) -> Path:
    path.write_text(
        "".join(
            json.dumps({"id": f"d{i}", "text": f"doc {i} " + "lorem ipsum " * words}) + "\n" for i in range(n)
        )
    )
    return path


def augment_argv(src: Path, out: Path, base_url: str, *extra: str) -> list[str]:
    return stub_augment_argv(
        src, out, base_url, "--concurrency", "4", "--shard-size", "8", "--no-progress", *extra
    )


def records_on_disk(out: Path) -> list[dict]:
    return [
        json.loads(line)
        for p in sorted((out / "shards").glob("part-*.jsonl"))
        if not p.name.endswith(".failures.jsonl")
        for line in p.read_text().splitlines()
    ]


def one_error_line(err: str, command: str) -> str:
    lines = [x for x in err.strip().splitlines() if x.strip()]
    assert lines and "Traceback" not in err, err
    assert lines[-1].startswith(f"tpt {command}: error: "), err
    return lines[-1]


@contextmanager
def tiny_filesystem(size: str):
    """A real filesystem of `size` (tmpfs), or skip where this process may not mount one."""
    if sys.platform != "linux" or os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small filesystem needs root on Linux")
    mnt = Path(tempfile.mkdtemp(prefix="tpt-full-"))
    if (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)], capture_output=True
        ).returncode
        != 0
    ):
        mnt.rmdir()
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        mnt.rmdir()


def test_a_real_full_disk_is_one_line_and_the_rerun_after_freeing_space_is_exactly_once(tmp_path):
    src = corpus(tmp_path / "docs.jsonl", 160)
    with StubServer(StubConfig(latency_ms=1, words=60)) as stub, tiny_filesystem("256k") as mnt:
        out = mnt / "out"
        argv = [sys.executable, "-m", "tpt", *augment_argv(src, out, stub.base_url)]
        full = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert full.returncode == 2
        line = one_error_line(full.stderr, "augment")
        assert "disk full (ENOSPC)" in line and str(mnt) in line and "re-run the same command" in line
        subprocess.run(["mount", "-o", "remount,size=16m", str(mnt)], check=True)
        again = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0, again.stderr
        assert sorted(r["id"] for r in records_on_disk(out)) == sorted(f"d{i}" for i in range(160))
        assert not list(out.rglob("*.tmp*")) and not list((out / "shards").glob("*.partial"))


def test_an_injected_enospc_is_one_line_and_the_rerun_is_exactly_once(tmp_path, monkeypatch, capsys):
    from tpt.augment import shards

    src = corpus(tmp_path / "docs.jsonl", 30, words=3)
    out = tmp_path / "out"
    real_write, calls = shards.OpenShard.write, []

    def write(self, index, line, *, failure):
        calls.append(index)
        if len(calls) == 13:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, index, line, failure=failure)

    with StubServer(StubConfig(latency_ms=1, words=6)) as stub:
        monkeypatch.setattr(shards.OpenShard, "write", write)
        assert main(augment_argv(src, out, stub.base_url)) == 2
        line = one_error_line(capsys.readouterr().err, "augment")
        assert line == (
            f"tpt augment: error: disk full (ENOSPC) at {out} (while writing under it): Free "
            "space there or choose an --output on another disk, then re-run the same command "
            "(finished work is kept)"
        )
        monkeypatch.setattr(shards.OpenShard, "write", real_write)
        assert main(augment_argv(src, out, stub.base_url)) == 0
    assert sorted(r["id"] for r in records_on_disk(out)) == sorted(f"d{i}" for i in range(30))


def test_permission_denied_names_the_directory(tmp_path):
    base = Path(tempfile.mkdtemp(prefix="tpt-perm-"))
    try:
        os.chmod(base, 0o755)
        src = corpus(base / "docs.jsonl", 2)
        locked = base / "locked"
        locked.mkdir(mode=0o555)
        os.chmod(locked, 0o555)
        cmd = [sys.executable, "-m", "tpt", "validate", str(src), "--output", str(locked / "val")]
        if os.geteuid() == 0:  # root may write anywhere: run as an unprivileged user
            if shutil.which("setpriv") is None:
                pytest.skip("needs setpriv to drop root")
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(base)}
        )
        assert done.returncode == 2, done.stderr
        line = one_error_line(done.stderr, "validate")
        assert "permission denied (EACCES)" in line and str(locked / "val") in line
        assert "give this user access" in line.lower()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_a_directory_deleted_under_a_run_is_one_line_and_the_rerun_redoes_it(tmp_path):
    # 400 documents, 4 at a time at 40 ms: ~4 s of run left after the first shard commits, so the
    # deletion lands mid-run even on a loaded machine (with 80 it could land after the run had finished).
    src = corpus(tmp_path / "docs.jsonl", 400, words=3)
    out = tmp_path / "out"
    with StubServer(StubConfig(latency_ms=40, words=6)) as stub:
        argv = [sys.executable, "-m", "tpt", *augment_argv(src, out, stub.base_url)]
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while not list((out / "shards").glob("part-*.stats.json")) and time.monotonic() < deadline:
            time.sleep(0.02)
        # The run writes and renames files in it meanwhile: a single rmtree can meet a temporary that
        # was just renamed away, so delete until the directory is gone.
        for _ in range(100):
            shutil.rmtree(out / "shards", ignore_errors=True)
            if not (out / "shards").exists():
                break
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 2
        line = one_error_line(err, "augment")
        assert "no such file or directory (ENOENT)" in line and str(out / "shards") in line
        again = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert sorted(r["id"] for r in records_on_disk(out)) == sorted(f"d{i}" for i in range(400))
