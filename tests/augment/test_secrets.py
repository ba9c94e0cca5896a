"""The API key never leaves the environment: a real `tpt augment` run (retries, failures, a refused
key) with the key set, then every file the run wrote and everything it printed is searched for it."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tpt.testing.openai_stub import StubProcess, augment_argv


def forms(key: str) -> list[bytes]:
    raw = key.encode()
    return [raw, base64.b64encode(raw), base64.b64encode(b"Bearer " + raw), raw[::-1]]


def files_under(*roots: Path, since: float) -> list[Path]:
    return [p for root in roots for p in root.rglob("*") if p.is_file() and p.stat().st_mtime >= since - 1]


def test_the_key_is_in_no_file_and_no_output(tmp_path):
    key = "sk-tpt-test-" + os.urandom(12).hex()
    wrong = "sk-tpt-wrong-" + os.urandom(12).hex()
    src = tmp_path / "docs.jsonl"
    src.write_text(
        "".join(json.dumps({"id": i, "text": f"document {i} about keys"}) + "\n" for i in range(40))
    )
    out = tmp_path / "out"
    env = {**os.environ, "TPT_SECRET_KEY": key, "HOME": str(tmp_path / "home")}
    started = time.time()
    stub_args = [
        "--api-key-env",
        "TPT_SECRET_KEY",
        "--latency-ms",
        "5",
        "--fail-rate",
        "0.3",
        "--faults",
        "500,429,400",
        "--retry-after-s",
        "0.01",
        "--words",
        "8",
    ]
    os.environ["TPT_SECRET_KEY"] = key  # the stub process reads it from its environment
    try:
        with StubProcess(stub_args, max_seconds=120) as stub:
            options = "--api-key-env TPT_SECRET_KEY --max-retries 1 --concurrency 4 --shard-size 8".split()
            cmd = [sys.executable, "-m", "tpt", *augment_argv(src, out, stub.base_url, *options)]
            runs = [subprocess.run(cmd, capture_output=True, env=env, timeout=120)]
            failures = [json.loads(x) for x in (out / "failures.jsonl").read_text().splitlines()]
            runs.append(subprocess.run([*cmd, "--retry-failed"], capture_output=True, env=env, timeout=120))
            refused = subprocess.run(
                [*cmd, "--retry-failed"],
                capture_output=True,
                timeout=120,
                env={**env, "TPT_SECRET_KEY": wrong},
            )
    finally:
        del os.environ["TPT_SECRET_KEY"]
    assert runs[0].returncode in (0, 1), runs[0].stderr.decode()
    assert any(f["reason"] == "generation_failed" for f in failures)  # the error paths ran
    assert refused.returncode == 2 and b"was refused" in refused.stderr
    home = tmp_path / "home"  # anything the run put in $HOME (caches) is searched too
    written = files_under(out, *([home] if home.exists() else []), since=started)
    assert {p.name for p in written} >= {"manifest.json", "summary.json", "failures.jsonl", ".tpt-lock"}
    for secret in (key, wrong):
        for form in forms(secret):
            for p in written:
                assert form not in p.read_bytes(), f"the key is in {p}"
            for run in (*runs, refused):
                assert form not in run.stdout and form not in run.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["backend_options"]["api_key_env"] == "TPT_SECRET_KEY"  # the name, not the key
