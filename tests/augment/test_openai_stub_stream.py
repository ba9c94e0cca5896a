"""The openai stub's streaming (server-sent events), its loop mode, and its count of produced tokens."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp

from tpt.testing.openai_stub import LOOP_UNIT, StubConfig, StubServer


def _body(prompt: str, **extra):
    return {"model": "stub", "messages": [{"role": "user", "content": prompt}], **extra}


async def _post(url: str, body: dict, *, close_after: int | None = None) -> tuple[list[dict], bytes]:
    """POST; for a stream, the parsed chunks (closing after `close_after` of them); else the body."""
    chunks: list[dict] = []
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as resp:
        if not body.get("stream"):
            return [], await resp.read()
        async for line in resp.content:
            if not line.startswith(b"data: "):
                continue
            data = line[6:].strip()
            if data == b"[DONE]":
                break
            chunks.append(json.loads(data))
            if close_after is not None and len(chunks) >= close_after:
                resp.close()
                break
    return chunks, b""


def _streamed_text(chunks: list[dict], field: str) -> str:
    return "".join(c["choices"][0]["delta"].get(field, "") for c in chunks if c["choices"])


def test_a_stream_carries_the_same_answer_as_a_plain_response():
    config = StubConfig(latency_ms=0, think="reasoning_content", words=30)
    with StubServer(config) as stub:
        url = stub.base_url + "/chat/completions"
        _, plain = asyncio.run(_post(url, _body("Explain prime numbers to a child.")))
        produced_plain = stub.stats.tokens_produced
        body = _body("Explain prime numbers to a child.", stream=True, stream_options={"include_usage": True})
        chunks, _ = asyncio.run(_post(url, body))
    message = json.loads(plain)["choices"][0]["message"]
    assert _streamed_text(chunks, "reasoning_content") == message["reasoning_content"]
    assert _streamed_text(chunks, "content") == message["content"]
    finals = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert [c["choices"][0]["finish_reason"] for c in finals] == ["stop"]
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == [] and usage == json.loads(plain)["usage"]
    assert produced_plain == usage["completion_tokens"]
    assert stub.stats.tokens_produced == 2 * usage["completion_tokens"]
    assert stub.stats.streams == 1 and stub.stats.streams_closed == 0


def test_loop_mode_repeats_the_loop_unit_up_to_max_tokens():
    config = StubConfig(latency_ms=0, loop_after=10, words=40)
    with StubServer(config) as stub:
        url = stub.base_url + "/chat/completions"
        chunks, _ = asyncio.run(_post(url, _body("A document about graphs.", stream=True, max_tokens=300)))
    words = _streamed_text(chunks, "content").split()
    assert len(words) == 300 and chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert words[10:18] == [*LOOP_UNIT, *LOOP_UNIT]
    assert stub.stats.tokens_produced == 300


def test_loop_rate_picks_the_same_prompts_every_time():
    config = StubConfig(latency_ms=0, loop_after=5, loop_rate=0.5, words=20)
    prompts = [f"document number {i}" for i in range(40)]

    def lengths():
        with StubServer(config) as stub:
            url = stub.base_url + "/chat/completions"
            out = []
            for p in prompts:
                _, raw = asyncio.run(_post(url, _body(p, max_tokens=100)))
                out.append(json.loads(raw)["usage"]["completion_tokens"])
            return out

    first = lengths()
    assert first == lengths()
    looped = sum(n == 100 for n in first)
    assert 10 <= looped <= 30 and all(n in (20, 100) for n in first)


def test_the_stub_stops_producing_when_the_client_closes_the_stream():
    config = StubConfig(latency_ms=0, loop_after=5, token_ms=5)
    with StubServer(config) as stub:
        url = stub.base_url + "/chat/completions"
        chunks, _ = asyncio.run(_post(url, _body("loop", stream=True, max_tokens=2000), close_after=21))
        deadline = time.monotonic() + 5
        while stub.stats.streams_closed == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        produced = stub.stats.tokens_produced
        time.sleep(0.2)  # 40 more chunks' time: none of them may be produced
        assert stub.stats.tokens_produced == produced
    assert len(chunks) == 21  # the role chunk and 20 words
    assert stub.stats.streams_closed == 1
    assert 20 <= produced <= 23  # the words sent, and at most a couple in flight when it closed
