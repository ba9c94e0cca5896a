"""The stream shapes of the servers tpt meets, replayed byte for byte through the openai backend.

tests/augment/data/streams/ holds one answer per file (README.md there says where each shape comes
from): vLLM and SGLang with a reasoning parser (usage only in a last chunk with no choices,
`stop_reason` / `matched_stop`), TGI (keep-alive comments, the role in every delta), a proxy that closes
after the finish without [DONE] (with `event:`/`id:` lines and CRLF), an error event mid-stream, and
real recordings of `transformers serve` and llama-cpp-python's server. A small aiohttp server on
127.0.0.1 answers every chat request with the file; the backend runs with the loop guard on (streamed).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("aiohttp")

import asyncio  # noqa: E402
import threading  # noqa: E402

from aiohttp import web  # noqa: E402

from tpt.augment.backends.base import GenerationRequest, SamplingParams  # noqa: E402
from tpt.augment.backends.openai_http import build  # noqa: E402

STREAMS = Path(__file__).parent / "data" / "streams"


class Replay:
    """`with Replay(body, content_type) as url`: every POST /v1/chat/completions gets `body`."""

    def __init__(self, body: bytes, content_type: str = "text/event-stream") -> None:
        self.body, self.content_type = body, content_type
        self.loop = asyncio.new_event_loop()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(headers={"Content-Type": self.content_type})
        await resp.prepare(request)
        for line in self.body.splitlines(keepends=True):  # as a server writes events, one by one
            await resp.write(line)
        await resp.write_eof()
        return resp

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": []})

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = self.runner.addresses[0][1]

    def __enter__(self) -> str:
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=30)
        return f"http://127.0.0.1:{self.port}/v1"

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


def replay(name: str, *, max_retries: int = 0):
    with Replay((STREAMS / name).read_bytes()) as url:
        backend = build({"model": "m", "base_url": url, "max_retries": max_retries})
        backend.retry_base_s = 0.001
        request = GenerationRequest(key=0, messages=({"role": "user", "content": "x"},), seed=1)
        try:
            [result] = backend.generate([request], SamplingParams(max_tokens=64))
        finally:
            backend.close()
    return result


# file -> (text, reasoning, finish_reason, stop, prompt_tokens, completion_tokens)
SHAPES = {
    "vllm_reasoning.sse": ("", "Okay, the user asks about primes.", "stop", "</think>", 41, 9),
    "vllm_length.sse": ("We check each step", None, "length", None, 30, 4),
    "sglang_reasoning.sse": ("", "First, list the cases", "stop", "</think>", 52, 5),
    "tgi_keepalive.sse": ("A lattice is a", None, "length", None, 25, 4),
    # no usage: completion_tokens counted by tpt (text pieces, without --tokenizer)
    "proxy_no_done.sse": ("Sets have members", None, "stop", None, 0, 3),
    # recorded here from the real servers (README.md there): no [DONE] after the usage chunk
    "transformers_serve.sse": ("The sun had set on a stormy night", None, "length", None, 37, 8),
    # no usage in its stream: counted by tpt in text pieces ("lum", "inescent" are one piece: 6)
    "llama_cpp_server.sse": ("The soft glow of luminescent light", None, "length", None, 0, 6),
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_each_servers_stream_reads_to_the_same_fields(name):
    if not (STREAMS / name).exists():
        pytest.skip(f"{name} not recorded")
    r = replay(name)
    assert r.error is None, r.error
    got = (r.text, r.reasoning, r.finish_reason, r.stop, r.prompt_tokens, r.completion_tokens)
    assert got == SHAPES[name]


def test_an_error_event_in_the_stream_is_a_retried_bad_response_with_its_message():
    r = replay("vllm_error.sse", max_retries=1)
    assert r.attempts == 2 and r.error.startswith("bad_response: the server sent an error in the stream")
    assert "EngineCore encountered an issue." in r.error
