"""Managed servers against fake server processes that take each engine's real command line: start,
health, restart after a kill -9, give up after max restarts, stop; and `tpt augment --serve` end to end
with a server that dies mid-run (no document lost, none duplicated, none recorded as failed)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.request

import pytest

from tpt.augment.servers.engines import ServeSpec, generation_config, server_command
from tpt.augment.servers.server import ManagedServer
from tpt.cli import main
from tpt.core.errors import BackendError, ConfigError


def models(base_url: str) -> list[str]:
    with urllib.request.urlopen(base_url + "/models", timeout=5) as resp:
        return [m["id"] for m in json.load(resp)["data"]]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_the_exact_command_lines(tmp_path):
    py = str(tmp_path / "env" / "bin" / "python")
    spec = ServeSpec(
        engine="vllm",
        model="/m/Qwen3-8B",
        served_model_name="qwen3",
        python=py,
        extra_args=("--max-num-seqs", "256"),
    )
    assert server_command(spec, 8001) == [
        str(tmp_path / "env" / "bin" / "vllm"),
        "serve",
        "/m/Qwen3-8B",
        "--host",
        "127.0.0.1",
        "--port",
        "8001",
        "--served-model-name",
        "qwen3",
        "--generation-config",
        "vllm",
        "--max-num-seqs",
        "256",
    ]
    # The model's generation_config would fill every field a request leaves out: tpt starts vLLM
    # without it, unless the user asks for one.
    own = ServeSpec(engine="vllm", model="/m", python=py, extra_args=("--generation-config", "auto"))
    assert server_command(own, 8001).count("--generation-config") == 1 and generation_config(own) == "auto"
    assert generation_config(spec) == "vllm"
    spec = ServeSpec(engine="sglang", model="/m/R1-7B", python=py)
    assert server_command(spec, 8002) == [
        py,
        "-m",
        "sglang.launch_server",
        "--model-path",
        "/m/R1-7B",
        "--host",
        "127.0.0.1",
        "--port",
        "8002",
        "--served-model-name",
        "/m/R1-7B",
    ]
    spec = ServeSpec(engine="llama.cpp", model="/m/smol.gguf", python=py, extra_args=("--n_ctx", "4096"))
    assert server_command(spec, 8003) == [
        py,
        "-m",
        "llama_cpp.server",
        "--model",
        "/m/smol.gguf",
        "--host",
        "127.0.0.1",
        "--port",
        "8003",
        "--model_alias",
        "/m/smol.gguf",
        "--n_ctx",
        "4096",
    ]


@pytest.mark.parametrize("engine", ["vllm", "sglang", "llama.cpp"])
def test_each_engine_starts_answers_and_stops(fake_engines, engine):
    spec = ServeSpec(
        engine=engine, model="/models/teacher", served_model_name="teacher", startup_timeout_s=30
    )
    with ManagedServer(spec) as server:
        assert server.healthy and models(server.base_url) == ["teacher"]
        pid = server.pid
        argv = json.loads((fake_engines / "argv.jsonl").read_text().splitlines()[-1])
        assert argv[argv.index("--port") + 1] == str(server.port)
    assert not server.healthy
    time.sleep(0.1)
    assert not alive(pid)


def test_a_killed_server_is_restarted_on_the_same_port(fake_engines):
    spec = ServeSpec(engine="vllm", model="m", startup_timeout_s=30, health_interval_s=0.5)
    with ManagedServer(spec) as server:
        first = server.pid
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while (server.generation < 2 or not server.healthy) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.restarts == 1 and server.healthy and server.pid != first
        assert models(server.base_url) == ["m"]
        assert "restart 1" in server.log_tail(50)


def test_after_max_restarts_the_server_is_failed_with_its_log(fake_engines):
    spec = ServeSpec(engine="vllm", model="m", startup_timeout_s=30, max_restarts=0)
    with ManagedServer(spec) as server:
        os.kill(server.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while server.failed is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (
            "exited with status -9 after 0 restarts" in server.failed and "=== tpt: starting" in server.failed
        )


def test_a_server_that_dies_while_starting_or_never_answers_is_a_clear_error(tmp_path):
    crash = ServeSpec(
        engine="command",
        model="m",
        startup_timeout_s=10,
        command=f"{sys.executable} -c \"print('CUDA out of memory'); raise SystemExit(3)\" {{port}}",
    )
    with pytest.raises(BackendError, match=r"(?s)exited with status 3 while starting.*CUDA out of memory"):
        ManagedServer(crash).start()
    mute = ServeSpec(
        engine="command",
        model="m",
        startup_timeout_s=1,
        command=f'{sys.executable} -c "import time; time.sleep(60)" {{port}}',
    )
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="did not answer GET /v1/models within 1 s"):
        ManagedServer(mute).start()
    assert time.monotonic() - t0 < 30  # and it was stopped, not left behind


def test_bad_serve_options_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="--serve must be one of"):
        ServeSpec(engine="tgi", model="m")
    with pytest.raises(ConfigError, match=r"needs --serve-command with a \{port\}"):
        ServeSpec(engine="command", model="m", command="my-server")
    with pytest.raises(ConfigError, match="needs --model"):
        ServeSpec(engine="vllm", model="")
    corpus = tmp_path / "d.jsonl"
    corpus.write_text('{"text": "x"}\n')
    assert (
        main(
            [
                "augment",
                str(corpus),
                "-o",
                str(tmp_path / "o"),
                "--serve",
                "vllm",
                "--model",
                "m",
                "--backend",
                "transformers",
            ]
        )
        == 2
    )


def test_augment_with_a_server_that_dies_mid_run_loses_and_duplicates_nothing(
    fake_engines, tmp_path, monkeypatch
):
    monkeypatch.setenv("FAKE_DIE_AFTER", "7")  # first life: SIGKILL after 7 requests
    monkeypatch.setenv("FAKE_LATENCY_MS", "60")
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": i, "text": f"document number {i}"}) + "\n" for i in range(20))
    )
    out = tmp_path / "out"
    # --max-retries 0: the client does not retry, so every request the dying server drops must be resent
    code = main(
        [
            "augment",
            str(corpus),
            "-o",
            str(out),
            "--serve",
            "vllm",
            "--model",
            "/models/teacher",
            "--served-model-name",
            "teacher",
            "--concurrency",
            "3",
            "--max-retries",
            "0",
            "--shard-size",
            "5",
            "--max-thinking-tokens",
            "32",
            "--no-progress",
        ]
    )
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] == 20 and summary["failures"] == 0 and summary["complete"]
    ids = sorted(
        json.loads(line)["id"]
        for p in (out / "shards").glob("part-*[0-9].jsonl")
        for line in p.read_text().splitlines()
    )
    assert ids == list(range(20))
    assert (fake_engines / "died-once").exists()  # the server did die under the run
    argvs = (fake_engines / "argv.jsonl").read_text().splitlines()
    assert len(argvs) == 2  # started, then restarted once
    assert all("--generation-config" in json.loads(a) for a in argvs)
    # Each record says every sampling parameter in force: what the request carried, and the server's.
    record = json.loads((out / "shards" / "part-00000000.jsonl").read_text().splitlines()[0])
    sampling = record["provenance"]["sampling"]
    assert {
        k: sampling[k]
        for k in (
            "temperature",
            "top_p",
            "top_k",
            "min_p",
            "repetition_penalty",
            "presence_penalty",
            "frequency_penalty",
            "max_tokens",
        )
    } == {
        "temperature": 0.6,
        "top_p": 0.9,
        "top_k": -1,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "max_tokens": 32,
    }
    assert sampling["server_generation_config"] == "vllm"
