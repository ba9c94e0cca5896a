"""One writer per output directory: real processes hold and contend for the lock (outputlock.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from tpt.cli import main
from tpt.storage.outputlock import LOCK_NAME, OutputBusyError, lock_output_dir

HOLDER = """
import os, sys, time
from tpt.storage.outputlock import lock_output_dir, lock_output_file
target, kind, fork_child = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
lock = (lock_output_file if kind == "file" else lock_output_dir)(target, stage="augment")
def child_main(started):
    started.set()  # the at-fork hook has run by now
    time.sleep(60)
if fork_child:
    import multiprocessing
    ctx = multiprocessing.get_context("fork")
    started = ctx.Event()
    child = ctx.Process(target=child_main, args=(started,), daemon=False)
    child.start()
    started.wait(30)
    print("child", child.pid, flush=True)
print("locked", os.getpid(), flush=True)
time.sleep(120)
"""


@contextmanager
def holder(target: Path, kind: str = "dir", fork_child: bool = False):
    """A separate process that holds the lock of `target` until the block ends (or it is killed)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(target), kind, "1" if fork_child else "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        while not lines or not lines[-1].startswith("locked"):
            line = proc.stdout.readline()
            assert line, f"the holder died before locking (rc {proc.poll()})"
            lines.append(line)
        proc.lines = lines
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_second_process_fails_at_once_naming_the_holder(tmp_path):
    out = tmp_path / "out"
    with holder(out) as proc:
        t0 = time.monotonic()
        with pytest.raises(OutputBusyError) as exc:
            lock_output_dir(out, stage="augment")
        assert time.monotonic() - t0 < 1.0
    msg = str(exc.value)
    assert f"pid {proc.pid}" in msg and socket.gethostname() in msg and "started 20" in msg
    assert "`tpt augment`" in msg and f"kill {proc.pid}" in msg and "re-run" in msg
    assert "\n" not in msg


def test_the_lock_of_a_killed_holder_is_taken_over(tmp_path, capsys):
    out = tmp_path / "out"
    with holder(out) as proc:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with lock_output_dir(out, stage="pack") as lock:
            assert lock.took_over["pid"] == proc.pid
            assert json.loads((out / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert f"took over the lock of {out}" in capsys.readouterr().err
    # A clean release leaves no holder behind: the next run takes over nothing.
    with lock_output_dir(out, stage="pack") as lock:
        assert lock.took_over is None


def test_a_forked_child_does_not_keep_the_lock_of_its_dead_parent(tmp_path):
    """Pack forks its workers: they must not hold the directory after `kill -9` of the parent."""
    out = tmp_path / "out"
    with holder(out, fork_child=True) as proc:
        child = int(proc.lines[0].split()[1])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        try:
            os.kill(child, 0)  # the child still runs ...
            with lock_output_dir(out, stage="pack"):  # ... and the directory is free
                pass
        finally:
            os.kill(child, signal.SIGKILL)


def test_the_lock_is_reentrant_within_one_process(tmp_path):
    out = tmp_path / "out"
    with lock_output_dir(out, stage="augment") as outer:
        with lock_output_dir(out, stage="augment") as inner:
            assert inner is outer
        with holder(tmp_path / "other"):
            pass
        with pytest.raises(AssertionError, match="died before locking"):  # still held by the outer
            with holder(out):
                pass


BUSY_COMMANDS = {
    "augment": lambda t, d: [
        "augment",
        str(d / "corpus.jsonl"),
        "--output",
        str(t),
        "--backend",
        "openai",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
        "--no-progress",
    ],
    "validate": lambda t, d: ["validate", str(d / "corpus.jsonl"), "--output", str(t)],
    "pack": lambda t, d: [
        "pack",
        str(d / "corpus.jsonl"),
        "--output",
        str(t),
        "--tokenizer",
        str(d / "nope"),
        "--seq-len",
        "64",
    ],
    "tokenizer": lambda t, d: [
        "tokenizer",
        "train",
        str(d / "corpus.jsonl"),
        "--vocab-size",
        "300",
        "--output",
        str(t),
    ],
    "eval": lambda t, d: ["eval", "embedded", "--tasks", "gsm8k", "--limit", "1", "--output", str(t)],
    "reproduce": lambda t, d: ["reproduce", "--output", str(t), "--scale", "quick"],
    "compare": lambda t, d: [
        "compare",
        "--arm",
        f"a={d / 'a.jsonl'}",
        "--arm",
        f"b={d / 'b.jsonl'}",
        "--baseline",
        "a",
        "--output",
        str(t),
    ],
}


@pytest.mark.parametrize("stage", sorted(BUSY_COMMANDS))
def test_every_stage_refuses_a_directory_in_use(tmp_path, capsys, stage):
    (tmp_path / "corpus.jsonl").write_text(json.dumps({"id": 1, "text": "a b c", "thinking": "d e f"}) + "\n")
    target = tmp_path / ("results.jsonl" if stage == "eval" else "out")
    with holder(target, kind="file" if stage == "eval" else "dir") as proc:
        t0 = time.monotonic()
        assert main(BUSY_COMMANDS[stage](target, tmp_path)) == 2
        assert time.monotonic() - t0 < 5.0
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"tpt {stage}: error: ") and "is in use by" in err and f"pid {proc.pid}" in err
    assert len(err.splitlines()) == 1
    assert not target.is_file() and not (target / "manifest.json").exists()


def test_a_filesystem_without_locks_is_named_and_can_be_overridden(tmp_path, monkeypatch):
    import errno
    import fcntl

    from tpt.core.errors import TptError

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with pytest.raises(TptError, match=r"does not support file locks .*-o flock.*TPT_OUTPUT_LOCK=off"):
        lock_output_dir(tmp_path / "out", stage="augment")
    monkeypatch.setenv("TPT_OUTPUT_LOCK", "off")
    with lock_output_dir(tmp_path / "out", stage="augment") as lock:
        assert lock.fd is None  # not locked: the user has said one writer uses this directory


def test_off_means_no_exclusion_between_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("TPT_OUTPUT_LOCK", "off")
    out = tmp_path / "out"
    with holder(out):  # the holder inherits TPT_OUTPUT_LOCK=off: it holds nothing
        with lock_output_dir(out, stage="pack"):
            pass
