"""Fake inference servers: a script that accepts an engine's real command line and serves the stub."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

# The fake: records its argv, finds the port and the served name the way the engine's CLI would, then
# serves the OpenAI stub. With FAKE_DIE_AFTER=N it kills itself (SIGKILL) after N requests, once: the
# marker file makes its restarted life a normal one.
FAKE_SERVER = r"""
import json, os, signal, sys, threading, time
argv = sys.argv[1:]
with open(os.environ["FAKE_ARGV_LOG"], "a") as f:
    f.write(json.dumps(argv) + "\n")
def flag(*names):
    for n in names:
        if n in argv:
            return argv[argv.index(n) + 1]
port = int(flag("--port"))
name = flag("--served-model-name", "--model_alias") or "stub"
from tpt.testing.openai_stub import StubConfig, StubServer
die_after = int(os.environ.get("FAKE_DIE_AFTER", "0"))
marker = os.environ.get("FAKE_MARKER", "")
first_life = bool(die_after) and not os.path.exists(marker)
if first_life:
    open(marker, "w").close()
time.sleep(float(os.environ.get("FAKE_STARTUP_S", "0.3")))  # an engine loads weights before it listens
with StubServer(StubConfig(model=name, latency_ms=float(os.environ.get("FAKE_LATENCY_MS", "30")), words=6),
                port=port) as stub:
    while True:
        time.sleep(0.02)
        if first_life and stub.stats.requests >= die_after:
            os.kill(os.getpid(), signal.SIGKILL)
        if os.getppid() == 1:
            break
"""


@pytest.fixture(autouse=True)
def _logs_in_tmp(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # server logs land in the test's dir


@pytest.fixture
def fake_engines(tmp_path, monkeypatch):
    """Put fake `vllm` (on PATH), `sglang.launch_server` and `llama_cpp.server` (on PYTHONPATH) in place."""
    root = tmp_path / "fake"
    (root / "bin").mkdir(parents=True)
    script = root / "fake_server.py"
    script.write_text(FAKE_SERVER)
    vllm = root / "bin" / "vllm"
    vllm.write_text(
        f"#!{sys.executable}\nimport runpy, sys\nsys.argv = [{str(script)!r}, *sys.argv[1:]]\n"
        f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    )
    vllm.chmod(0o755)
    for module in ("sglang/launch_server.py", "llama_cpp/server/__main__.py"):
        path = root / "py" / module
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"import runpy\nrunpy.run_path({str(script)!r}, run_name='__main__')\n")
    for pkg in ("sglang", "llama_cpp", "llama_cpp/server"):
        (root / "py" / pkg / "__init__.py").touch()
    monkeypatch.setenv("PATH", f"{root / 'bin'}{os.pathsep}{os.environ['PATH']}")
    src = Path(__file__).resolve().parents[2] / "src"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(root / "py"), str(src)]))
    monkeypatch.setenv("FAKE_ARGV_LOG", str(root / "argv.jsonl"))
    monkeypatch.setenv("FAKE_MARKER", str(root / "died-once"))
    monkeypatch.syspath_prepend(str(root / "py"))  # find_spec('sglang') in this process, for the check
    return root
