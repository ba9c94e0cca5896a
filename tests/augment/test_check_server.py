"""`tpt augment --check-server` against the stub on 127.0.0.1: each property read correctly, and the exit
status 4 for a server the run cannot use (the real servers: test_real_servers.py)."""

from __future__ import annotations

import socket

import pytest

pytest.importorskip("aiohttp")

from tpt.augment.cli import check_config  # noqa: E402
from tpt.augment.server_check import collect, context_length  # noqa: E402
from tpt.cli import build_parser, main  # noqa: E402
from tpt.core.errors import EXIT_OK, EXIT_SERVER_UNUSABLE  # noqa: E402
from tpt.testing.openai_stub import StubConfig, StubServer  # noqa: E402


def check(url: str, capsys, *extra: str, model: str = "stub") -> tuple[int, dict[str, str]]:
    """(exit status, {row: seen + action, '!! ' first when it makes the server unusable, '_out': the table})."""
    argv = ["augment", "--check-server", "--backend", "openai", "--base-url", url, "--model", model, *extra]
    rc = main(argv)
    out = capsys.readouterr().out
    rows, _ = collect(check_config(build_parser("augment").parse_args(argv)))
    got = {r.what: ("!! " if r.fatal else "") + f"{r.seen} | {r.action}" for r in rows}
    return rc, {**got, "_out": out}


def test_a_streaming_server_reports_each_property(capsys):
    with StubServer(StubConfig(latency_ms=1, words=40)) as stub:
        rc, rows = check(stub.base_url, capsys)
    assert rc == EXIT_OK and "usable: yes" in rows["_out"]
    assert rows["model"].startswith("'stub' listed")
    assert rows["streaming"].startswith("yes (text/event-stream")
    assert rows["usage in stream"].startswith("yes (10 tokens)")
    assert rows["finish_reason at the cap"].startswith("length |")
    assert rows["reasoning field"].startswith("none")
    assert rows["seed"].startswith("cannot tell: two seeds gave the same text")  # the stub ignores seeds
    assert rows["stop strings"].startswith("honoured")
    assert rows["context length"].startswith("not advertised")
    assert "checked in" in rows["_out"]


def test_a_reasoning_field_is_named(capsys):
    with StubServer(StubConfig(latency_ms=1, words=40, think="reasoning")) as stub:
        rc, rows = check(stub.base_url, capsys)
    assert rc == EXIT_OK and rows["reasoning field"].startswith("reasoning ")


def test_a_server_that_ignores_stream_is_usable_and_says_what_tpt_does(capsys):
    with StubServer(StubConfig(latency_ms=1, stream_mode="ignore")) as stub:
        rc, rows = check(stub.base_url, capsys)
    assert rc == EXIT_OK and rows["streaming"].startswith("ignored: one JSON body")
    assert "after generation" in rows["streaming"]


def test_a_broken_stream_is_unusable_with_the_guard_and_fine_without(capsys):
    with StubServer(StubConfig(latency_ms=1, stream_mode="html")) as stub:
        rc, rows = check(stub.base_url, capsys)
        assert rc == EXIT_SERVER_UNUSABLE and rows["streaming"].startswith("!! broken: text/html")
        assert "usable: NO" in rows["_out"]
        rc, rows = check(stub.base_url, capsys, "--loop-guard", "off")
    assert rc == EXIT_OK and "not used (--loop-guard off)" in rows["streaming"]


def test_refused_requests_wrong_model_and_no_server_are_unusable(capsys):
    with StubServer(StubConfig(latency_ms=1, schedule=(("lighthouse", ("400*",)),))) as stub:
        rc, rows = check(stub.base_url, capsys)
        assert rc == EXIT_SERVER_UNUSABLE and rows["chat request"].startswith("!! HTTP 400")
        assert "--sampling-fields standard" in rows["chat request"]
        rc, rows = check(stub.base_url, capsys, model="other")
        assert rc == EXIT_SERVER_UNUSABLE and "'other' is not served (it serves stub)" in rows["model"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    rc, rows = check(f"http://127.0.0.1:{port}/v1", capsys)
    assert rc == EXIT_SERVER_UNUSABLE and rows["server"].startswith("!! no answer at")


def test_an_advertised_context_length_is_read_and_compared():
    vllm = b'{"object":"list","data":[{"id":"Qwen/Qwen3-8B","object":"model","max_model_len":40960}]}'
    llama = b'{"object":"list","data":[{"id":"m","meta":{"n_ctx_train":8192}}]}'
    assert context_length(vllm, "Qwen/Qwen3-8B") == 40960 and context_length(llama, "m") == 8192
    assert context_length(b'{"data":[{"id":"m"}]}', "m") is None and context_length(b"nope", "m") is None
