"""The loop guard in the openai backend: requests are streamed, and a looping one is closed by the client,
so the server stops generating it (the stub counts the tokens it produced)."""

from __future__ import annotations

import time

import pytest

pytest.importorskip("aiohttp")

from tpt.augment.backends.base import GenerationRequest, SamplingParams  # noqa: E402
from tpt.augment.backends.openai_http import build  # noqa: E402
from tpt.augment.loopguard import LoopGuardOptions  # noqa: E402
from tpt.core.errors import ConfigError  # noqa: E402
from tpt.testing.openai_stub import LOOP_UNIT, StubConfig, StubServer, expected_thinking  # noqa: E402

OFF, ON = LoopGuardOptions(enabled=False), LoopGuardOptions()


def req(i: int, text: str | None = None) -> GenerationRequest:
    content = text or f"Document {i}: a note about prime numbers and their gaps."
    return GenerationRequest(key=i, messages=({"role": "user", "content": content},), seed=i)


def run(stub, requests, guard=ON, max_tokens=2000, **options):
    backend = build({"model": "stub", "base_url": stub.base_url, "max_retries": 0, **options})
    try:
        return list(backend.generate(requests, SamplingParams(max_tokens=max_tokens, loop_guard=guard)))
    finally:
        backend.close()


def _settled(stub) -> int:
    """tokens_produced once the server has seen every close (it stops within a chunk or two)."""
    seen = -1
    while seen != stub.stats.tokens_produced:
        seen = stub.stats.tokens_produced
        time.sleep(0.1)
    return seen


@pytest.mark.parametrize("think", ["plain", "reasoning_content"])
def test_a_looping_stream_is_closed_and_the_server_stops(think):
    config = StubConfig(latency_ms=1, token_ms=0.5, loop_after=30, think=think)
    with StubServer(config) as stub:
        [off] = run(stub, [req(0)], guard=OFF)
        produced_off = _settled(stub)
    with StubServer(config) as stub:
        [on] = run(stub, [req(0)])
        produced_on = _settled(stub)
        closed = stub.stats.streams_closed
        body = stub.stats.bodies[-1]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert off.finish_reason == "length" and produced_off == 2000
    assert (on.finish_reason, on.stop, on.error) == ("repetition", "loop_guard", None)
    assert closed == 1
    window = LoopGuardOptions().window
    # Stopped within a window of the loop's start: before the window fills, once the loop's repeats are
    # the threshold's share of all the n-grams so far (30 words before it, a period of 4)
    assert (30 + 4) / (1 - LoopGuardOptions().threshold) < produced_on < 30 + 2 * window
    thinking = on.reasoning if think == "reasoning_content" else on.text
    head = expected_thinking(req(0).messages[0]["content"], 2000, loop_after=30)
    # the thinking kept is what came before the loop (the loop's first copy may be where it began)
    assert head.startswith(thinking) and len(thinking.split()) in range(29, 32)
    assert LOOP_UNIT[0] not in thinking.split()[:29]
    assert 0 <= on.loop_start <= 32 and on.completion_tokens >= produced_on - 4


def test_answers_that_do_not_loop_read_the_same_streamed_or_not():
    config = StubConfig(latency_ms=1, words=60, think="tags")
    with StubServer(config) as stub:
        plain = run(stub, [req(i) for i in range(4)], guard=OFF)
        streamed = run(stub, [req(i) for i in range(4)])
        bodies = list(stub.stats.bodies)
    assert not any(b.get("stream") for b in bodies[:4]) and all(b.get("stream") for b in bodies[4:])
    assert sorted(plain, key=lambda r: r.key) == sorted(streamed, key=lambda r: r.key)


def test_only_the_looping_half_is_stopped():
    config = StubConfig(latency_ms=1, loop_after=20, loop_rate=0.5, words=80)
    with StubServer(config) as stub:
        results = run(stub, [req(i) for i in range(16)], max_tokens=1500)
    finishes = [r.finish_reason for r in results]
    assert 3 <= finishes.count("repetition") <= 13
    assert finishes.count("repetition") + finishes.count("stop") == 16
    assert all(len(r.text.split()) == 80 for r in results if r.finish_reason == "stop")


def test_penalties_are_sent_and_recorded():
    with StubServer(StubConfig(latency_ms=1, words=10)) as stub:
        backend = build({"model": "stub", "base_url": stub.base_url})
        sampling = SamplingParams(frequency_penalty=0.5, presence_penalty=0.25, repetition_penalty=1.1)
        list(backend.generate([req(0)], sampling))
        body = stub.stats.bodies[-1]
        in_force = backend.sampling_in_force(sampling)
        backend.close()
    assert (body["frequency_penalty"], body["presence_penalty"], body["repetition_penalty"]) == (
        0.5,
        0.25,
        1.1,
    )
    assert in_force["frequency_penalty"] == 0.5 and "stream" not in in_force
    standard = build({"model": "m", "base_url": "http://127.0.0.1:9/v1", "sampling_fields": "standard"})
    assert standard.body_template(SamplingParams(frequency_penalty=0.5))["frequency_penalty"] == 0.5
    with pytest.raises(ConfigError, match="--repetition-penalty"):
        standard.body_template(SamplingParams(repetition_penalty=1.2))
    llama = build({"model": "m", "base_url": "http://127.0.0.1:9/v1", "server_engine": "llama.cpp"})
    assert llama.body_template(SamplingParams(repetition_penalty=1.2))["repeat_penalty"] == 1.2


def test_a_stream_that_ends_without_a_finish_is_retried():
    config = StubConfig(latency_ms=1, words=30, schedule=(("CUT", ("partial",)),))
    with StubServer(config) as stub:
        backend = build({"model": "stub", "base_url": stub.base_url, "max_retries": 2})
        backend.retry_base_s = 0.001
        [r] = list(backend.generate([req(0, "CUT this one")], SamplingParams()))
        backend.close()
    assert r.error is None and r.attempts == 2 and r.finish_reason == "stop"


def test_a_loop_under_a_cap_below_the_window_is_stopped_end_to_end(tmp_path):
    """Issue 29: `tpt augment --max-thinking-tokens 200` against a server whose answers loop from the
    start: the 256-token window never fills, and the loops used to run to the cap."""
    import json

    from tpt.cli import main

    corpus = tmp_path / "in.jsonl"
    corpus.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": f"Note {i} on primes."}) + "\n" for i in range(3))
    )
    out = tmp_path / "out"
    with StubServer(StubConfig(latency_ms=1, token_ms=0.2, loop_after=1)) as stub:
        code = main(["augment", str(corpus), "--output", str(out), "--backend", "openai", "--model", "stub",
                     "--base-url", stub.base_url, "--max-thinking-tokens", "200", "--no-progress"])  # fmt: skip
        produced = _settled(stub)
    assert code == 0
    records = [json.loads(line) for f in sorted((out / "shards").glob("*.jsonl")) for line in f.open()]
    assert len(records) == 3
    options = LoopGuardOptions()
    for record in records:
        assert record["finish_reason"] == "repetition" and record["loop"]["start_token"] <= 2
        # stopped once the window held min_fill n-grams, far short of the cap
        assert options.min_fill + options.ngram - 1 <= record["completion_tokens"] < 100
    assert produced < 3 * 100
