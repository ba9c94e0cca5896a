"""`kill -9` of a real `tpt augment` process, twice, against a fault-injecting server; then a re-run.

Invariant: every valid input document ends with exactly one record, whose content is the one the server
wrote for that document; no partial file or torn line survives; nothing is listed as failed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tpt.augment.prompts import load_template
from tpt.testing.openai_stub import StubProcess, augment_argv, expected_thinking


def outcomes_on_disk(out: Path) -> int:
    n = 0
    for p in (out / "shards").glob("part-*"):
        if ".jsonl" in p.name:
            try:
                n += p.read_bytes().count(b"\n")
            except FileNotFoundError:  # a partial shard committed (renamed) between the glob and the read
                pass
    return n


def augment_cmd(src: Path, out: Path, base_url: str) -> list[str]:
    options = "--concurrency 3 --shard-size 8 --max-retries 12 --request-timeout 5 --no-progress".split()
    return [sys.executable, "-m", "tpt", *augment_argv(src, out, base_url, *options)]


@pytest.mark.slow
def test_kill_dash_nine_twice_then_resume_is_exactly_once(tmp_path):
    n_docs = 60
    src = tmp_path / "docs.jsonl"
    src.write_text(
        "".join(
            json.dumps({"id": f"d{i}", "text": f"document number {i} " + "word " * (i % 7)}) + "\n"
            for i in range(n_docs)
        )
    )
    out = tmp_path / "out"
    stub_args = ["--latency-ms", "60", "--fail-rate", "0.2", "--retry-after-s", "0.05", "--words", "12"]
    with StubProcess(stub_args, max_seconds=120) as stub:
        for kill_at in (12, 35):
            proc = subprocess.Popen(
                augment_cmd(src, out, stub.base_url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
            )
            deadline = time.monotonic() + 60
            while outcomes_on_disk(out) < kill_at and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert proc.poll() is None, "the run finished before it could be killed"
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        assert list((out / "shards").glob("*.partial")), "the kills should leave partial shards behind"
        done = subprocess.run(augment_cmd(src, out, stub.base_url), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert not list((out / "shards").glob("*.partial"))
    records = []
    for p in sorted((out / "shards").glob("part-*.jsonl")):
        if not p.name.endswith(".failures.jsonl"):
            records += [json.loads(line) for line in p.read_text().splitlines()]  # every line parses
    assert sorted(r["id"] for r in records) == sorted(f"d{i}" for i in range(n_docs))  # exactly once
    template = load_template("paper")
    for r in records:
        assert r["thinking"] == expected_thinking(template.render(r["text"]), 12)
    assert (out / "failures.jsonl").read_text() == ""
    summary = json.loads((out / "summary.json").read_text())
    assert summary["complete"] and summary["records"] == n_docs
