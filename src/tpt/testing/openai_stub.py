"""A fault-injecting OpenAI-compatible chat server (aiohttp.web) for tests and benchmarks.

It binds 127.0.0.1 only and answers `POST /v1/chat/completions` and `GET /v1/models` after a fixed
latency, with deterministic text derived from the prompt (so a test can check each result belongs to
its request). Faults come either at a rate, decided by a hash of the prompt and its attempt number
(the same corpus fails the same way whatever the arrival order), or on a schedule matched by a
substring of the prompt.

Fault tokens: ok, 500, 503, 429 (with Retry-After), 400, 401, 404, hang (sleep `hang_s`, past the
client timeout), slow (sleep `slow_s` more), drop (close the connection before answering), partial
(headers and half the body, then close), garbage (200 with invalid JSON), incomplete (200, JSON
without choices), length (finish_reason "length").

Streaming: a request with `"stream": true` is answered as server-sent events, one chunk per word
(`data: {"object": "chat.completion.chunk", "choices": [{"delta": ...}]}` ... `data: [DONE]`, with a
usage chunk when `stream_options.include_usage` is set), `token_ms` apart, as vLLM, SGLang and
llama.cpp stream. The stub stops producing when the client closes the connection, and counts the
tokens (words) it produced in `stats.tokens_produced`, streamed or not: what a loop guard that closes
the stream saves. Loop mode (`loop_after` > 0): the thinking falls into a repetition loop
(`LOOP_UNIT` over and over) after that many words and runs on to the request's max_tokens, like a
small teacher; `loop_rate` of the prompts loop (a hash of the prompt decides which).

In a test:   with StubServer(StubConfig(latency_ms=5)) as stub: ... stub.base_url ...
As a process: python -m tpt.testing.openai_stub --port 8000 --latency-ms 100 --fail-rate 0.1
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import math
import os
import random
import select
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tpt.core.jsontypes import JSONObject

FAULTS = (
    "ok", "500", "503", "429", "400", "401", "404", "hang", "slow", "drop", "partial", "garbage",
    "incomplete", "length",
)  # fmt: skip
STREAM_MODES = ("sse", "ignore", "mislabeled", "html")
"""How a streamed request is answered: sse (server-sent events), ignore (one JSON body, as servers and
proxies that ignore `stream` do), mislabeled (that JSON body as text/plain), html (a 200 HTML page)."""
THINK_MODES = ("plain", "tags", "close_only", "reasoning_content", "reasoning")
LOOP_UNIT = ("\\equiv", "d", "+", "d")
"""What a looping answer repeats (the loop the embedded teacher fell into in issue 15): `\\equiv d + d`."""
_WORDS = (
    "consider the claim first then ask why it holds and what would break if it did not so we "
    "check each step against a simple case like a child would explain it in plain words and note "
    "the key idea"
).split()


@dataclass(kw_only=True)
class StubConfig:
    """How the stub answers; every field has a CLI flag of the same name."""

    model: str = "stub"
    latency_ms: float = 100.0
    """Time before each answer (the 'generation time'); the median when latency_sigma is set."""
    latency_sigma: float = 0.0
    """Log-normal spread: an attempt's latency is latency_ms * exp(sigma * z), z standard normal drawn
    from a hash of the prompt and attempt number; p99 / median = exp(2.326 * sigma) (1.288: 20x)."""
    timing_out: str | None = None
    """When set, the stub writes every prompt's attempts (arrival, latency, fault, answered; wall-clock
    seconds) to this JSON file when it stops: {sha1(prompt): [[arrival, latency_s, fault, done], ...]}."""
    words: int = 48
    """Thinking words generated per request (one word = one fake token)."""
    think: str = "plain"
    """plain: bare text (a non-reasoning teacher); tags: <think>..</think> then an answer;
    close_only: text then </think> (the template opened the tag, R1-distill style);
    reasoning_content / reasoning: a separate field (a vLLM reasoning parser: vLLM >= 0.11 says
    `reasoning`, SGLang and llama.cpp `reasoning_content`)."""
    fail_rate: float = 0.0
    """Probability that an attempt gets one of `faults` (a hash of prompt and attempt number)."""
    faults: tuple[str, ...] = ("500", "503", "429", "drop", "partial", "garbage")
    length_rate: float = 0.0
    """Probability that a successful answer is cut with finish_reason "length"."""
    schedule: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(substring, faults): attempt k of a prompt containing substring gets faults[k] ("ok" past
    the end; a last fault ending in '*' repeats forever, e.g. ("POISON", ("400*",)))."""
    retry_after_s: float = 1.0
    hang_s: float = 3600.0
    slow_s: float = 2.0
    api_key: str | None = None
    """When set, requests without `Authorization: Bearer <api_key>` get 401."""
    seed: int = 0
    keep_bodies: int = 64
    """How many recent request bodies to keep for inspection (bounded: memory stays flat)."""
    token_ms: float = 0.0
    """Streaming: time between two chunks (one word each), after `latency_ms` before the first."""
    loop_after: int = 0
    """When > 0, a looping prompt's thinking repeats LOOP_UNIT after this many words, up to the
    request's max_tokens (`words` when it sets none)."""
    loop_rate: float = 1.0
    """Share of prompts that loop when loop_after is set (decided by a hash of the prompt)."""
    stream_mode: str = "sse"
    """How `"stream": true` is answered: one of STREAM_MODES."""


@dataclass
class StubStats:
    """What the stub saw; read it from tests (single writer: the server thread)."""

    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    by_fault: collections.Counter = field(default_factory=collections.Counter)
    bodies: collections.deque = field(default_factory=collections.deque)
    auth_headers: set = field(default_factory=set)
    attempt_times: dict = field(default_factory=dict)
    """prompt key -> monotonic arrival times of its attempts (kept only when faults are set)."""
    tokens_produced: int = 0
    """Completion tokens (words) the stub produced: all of a plain answer's, and of a streamed one
    only those written before the client closed the connection."""
    clients_gone: int = 0
    """Answers cut off because the client closed its connection (aiohttp would log each with a traceback)."""
    streams: int = 0
    streams_closed: int = 0
    """Streams the client closed before the end (the stub stopped producing there)."""


def prompt_text(messages: list[JSONObject]) -> str:
    """The text faults and fake answers are derived from: the user turns, joined."""
    return "\n".join(str(m.get("content", "")) for m in messages if m.get("role") != "assistant")


def expected_thinking(prompt: str, words: int, *, loop_after: int = 0) -> str:
    """The thinking the stub writes: 'Thinking about <first words>:' plus hashed filler words; with
    loop_after, LOOP_UNIT repeated from that word on (`words` words in all)."""
    head = " ".join(prompt.split()[:6])
    rng = random.Random(hashlib.sha256(prompt.encode()).digest())
    filler = [rng.choice(_WORDS) for _ in range(max(0, words - 2 - len(head.split())))]
    thinking = ["Thinking", "about", *f"{head}:".split(), *filler]
    if loop_after:
        thinking = thinking[:loop_after]
        thinking += [LOOP_UNIT[i % len(LOOP_UNIT)] for i in range(max(0, words - len(thinking)))]
    return " ".join(thinking)


def loops(config: StubConfig, prompt: str) -> bool:
    """Whether the stub answers this prompt with a loop (loop_after set, and its hash under loop_rate)."""
    return config.loop_after > 0 and _uniform(config.seed, prompt, "loop") < config.loop_rate


def _uniform(*parts: object) -> float:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


class _Stub:
    """The request handlers and their state; runs inside one event loop."""

    def __init__(self, config: StubConfig) -> None:
        for fault in config.faults:
            if fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r}; choose from {', '.join(FAULTS)}")
        if config.think not in THINK_MODES:
            raise ValueError(f"unknown think mode {config.think!r}; choose from {THINK_MODES}")
        if config.stream_mode not in STREAM_MODES:
            raise ValueError(f"unknown stream mode {config.stream_mode!r}; choose from {STREAM_MODES}")
        self.config = config
        self.stats = StubStats(bodies=collections.deque(maxlen=config.keep_bodies))
        self._attempts: dict[str, int] = {}
        self._track = bool(
            config.fail_rate
            or config.schedule
            or config.length_rate
            or config.latency_sigma
            or config.timing_out
        )
        self.timings: dict[str, list[list[Any]]] = {}

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        return app

    async def models(self, request: web.Request) -> web.Response:
        if (denied := self._check_auth(request)) is not None:
            return denied
        data = [{"id": self.config.model, "object": "model", "owned_by": "tpt-stub"}]
        return web.json_response({"object": "list", "data": data})

    def _check_auth(self, request: web.Request) -> web.Response | None:
        header = request.headers.get("Authorization")
        if header:
            self.stats.auth_headers.add(header)
        if self.config.api_key is not None and header != f"Bearer {self.config.api_key}":
            return _error(401, "Incorrect API key provided.", "authentication_error")
        return None

    def _pick_fault(self, text: str) -> str:
        if not self._track:
            return "ok"
        key = hashlib.sha1(text.encode()).hexdigest()
        attempt = self._attempts.get(key, 0)
        self._attempts[key] = attempt + 1
        self.stats.attempt_times.setdefault(key, []).append(time.monotonic())
        for needle, faults in self.config.schedule:
            if needle in text:
                if attempt < len(faults):
                    return faults[attempt].rstrip("*")
                return faults[-1].rstrip("*") if faults and faults[-1].endswith("*") else "ok"
        cfg = self.config
        if cfg.fail_rate and cfg.faults and _uniform(cfg.seed, key, attempt) < cfg.fail_rate:
            return cfg.faults[int(_uniform(cfg.seed, key, attempt, "kind") * len(cfg.faults))]
        if cfg.length_rate and _uniform(cfg.seed, key, attempt, "length") < cfg.length_rate:
            return "length"
        return "ok"

    async def chat(self, request: web.Request) -> web.StreamResponse:
        stats = self.stats
        stats.requests += 1
        stats.in_flight += 1
        stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
        try:
            return await self._chat(request)
        except ConnectionResetError:  # the client went away (a killed worker): aiohttp would log a traceback
            stats.clients_gone += 1
            return web.Response(status=499)
        finally:
            stats.in_flight -= 1

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        cfg = self.config
        if (denied := self._check_auth(request)) is not None:
            return denied
        try:
            body = await request.json()
            messages = body["messages"]
            text = prompt_text(messages)
        except (ValueError, KeyError, TypeError, AttributeError):
            return _error(400, "request body must be JSON with a 'messages' list", "BadRequestError")
        self.stats.bodies.append(body)
        if body.get("model") != cfg.model:
            return _error(404, f"The model `{body.get('model')}` does not exist.", "NotFoundError")
        arrival = time.time()
        fault = self._pick_fault(text)
        self.stats.by_fault[fault] += 1
        key = hashlib.sha1(text.encode()).hexdigest() if self._track else ""
        if fault in ("500", "503", "400", "401", "404", "429"):
            self._note(key, arrival, 0.0, fault)
            if fault != "429":
                return _error(int(fault), f"injected fault {fault}", "InjectedFault")
            resp = _error(429, "rate limited (injected)", "RateLimitError")
            resp.headers["Retry-After"] = f"{cfg.retry_after_s:g}"
            return resp
        latency = cfg.latency_ms / 1000
        if cfg.latency_sigma:
            attempt = self._attempts.get(key, 1) - 1  # set by _pick_fault, no await in between
            u = min(max(_uniform(cfg.seed, key, attempt, "latency"), 1e-12), 1 - 1e-12)
            latency *= math.exp(cfg.latency_sigma * statistics.NormalDist().inv_cdf(u))
        extra_s = {"hang": cfg.hang_s, "slow": cfg.slow_s}.get(fault, 0.0)
        try:
            await asyncio.sleep(extra_s + latency)
            return await self._answer(request, fault, body, messages, text)
        finally:  # noted also for drop and partial, which end by cancelling the handler
            self._note(key, arrival, extra_s + latency, fault)

    def _note(self, key: str, arrival: float, latency: float, fault: str) -> None:
        if self.config.timing_out:
            self.timings.setdefault(key, []).append([arrival, latency, fault, time.time()])

    async def _answer(
        self, request: web.Request, fault: str, body: dict, messages: list, text: str
    ) -> web.StreamResponse:
        if fault == "drop":
            return _drop(request)
        if fault == "garbage":
            broken = b'{"choices": [{"message": {"content": "unterminated'
            return web.Response(body=broken, status=200, content_type="application/json")
        if fault == "incomplete":
            return web.json_response({"id": "chatcmpl-stub", "object": "chat.completion"})
        completion = self._completion(body, messages, text, force_length=fault == "length")
        mode = self.config.stream_mode
        if body.get("stream") and mode == "sse":
            return await self._stream(request, body, completion, partial=fault == "partial")
        if body.get("stream") and mode == "html":
            page = b"<!DOCTYPE html><html><body><h1>It works</h1></body></html>"
            return web.Response(body=page, content_type="text/html")
        payload = json.dumps(completion).encode()
        if body.get("stream") and mode == "mislabeled":
            self.stats.tokens_produced += completion["usage"]["completion_tokens"]
            return web.Response(body=payload, content_type="text/plain")
        if fault == "partial":
            return await _partial(request, payload)
        self.stats.tokens_produced += completion["usage"]["completion_tokens"]
        return web.Response(body=payload, content_type="application/json")

    async def _stream(
        self, request: web.Request, body: dict, completion: dict, *, partial: bool = False
    ) -> web.StreamResponse:
        """The completion as server-sent events, a word per chunk, `token_ms` apart; `partial`: the
        connection closes after half the words."""
        stats, choice = self.stats, completion["choices"][0]
        message = choice["message"]
        stats.streams += 1
        resp = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        head = {k: completion[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}

        async def send(delta: dict, finish: str | None = None, **extra: Any) -> None:
            chunk = {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish, **extra}]}
            await resp.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")

        words_left = completion["usage"]["completion_tokens"] // 2 if partial else -1
        try:
            await send({"role": "assistant", "content": ""})
            for field_name in (self.config.think, "content"):  # the reasoning field first, if any
                if not message.get(field_name):
                    continue
                for i, word in enumerate(message[field_name].split(" ")):
                    if words_left == 0:  # the 'partial' fault: the server goes away mid-stream
                        if request.transport is not None:
                            request.transport.close()
                        raise asyncio.CancelledError
                    words_left -= 1
                    if self.config.token_ms:
                        await asyncio.sleep(self.config.token_ms / 1000)
                    stats.tokens_produced += len(word.split())  # as usage counts them
                    await send({field_name: word if i == 0 else " " + word})
            await send({}, choice["finish_reason"], stop_reason=choice["stop_reason"])
            options = body.get("stream_options") or {}
            if options.get("include_usage"):
                usage = {**head, "choices": [], "usage": completion["usage"]}
                await resp.write(b"data: " + json.dumps(usage).encode() + b"\n\n")
            await resp.write(b"data: [DONE]\n\n")
            await resp.write_eof()
        except (asyncio.CancelledError, ConnectionResetError):
            stats.streams_closed += 1  # the client closed the stream: produce no more
            raise
        return resp

    def _completion(self, body: dict, messages: list, text: str, *, force_length: bool) -> dict:
        cfg = self.config
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 1 << 30
        if loops(cfg, text):  # a loop never ends by itself: it runs to max_tokens
            length = cfg.words if max_tokens == 1 << 30 else max_tokens + 1
            thinking = expected_thinking(text, length, loop_after=cfg.loop_after).split()
        else:
            thinking = expected_thinking(text, cfg.words).split()
        finish = "stop"
        if force_length:
            max_tokens = min(max_tokens, max(1, len(thinking) // 2))
        if len(thinking) > max_tokens:
            thinking, finish = thinking[:max_tokens], "length"
        thought = " ".join(thinking)
        stops = body.get("stop") or []
        stops = [stops] if isinstance(stops, str) else stops
        cut_at_close = "</think>" in stops
        answer = "So the key idea is clear."
        continuing = bool(body.get("continue_final_message")) and messages[-1].get("role") == "assistant"
        reasoning = None
        stop_reason = None  # like vLLM: the stop string that cut the answer, null for end of sequence
        if cfg.think in ("reasoning_content", "reasoning"):
            reasoning = thought
            content = None if cut_at_close or finish == "length" else answer
            if cut_at_close and finish != "length":
                stop_reason = "</think>"
        else:
            if cfg.think == "tags" and not continuing:
                thought = "<think>\n" + thought
            content = thought if finish == "length" else thought + "\n</think>\n\n" + answer
            if cfg.think == "plain" and not continuing:
                content = thought  # a non-reasoning teacher writes no tags at all
            for stop in stops:  # like vLLM: cut at the first stop string, which is not returned
                if stop and stop in content:
                    content, stop_reason, finish = content[: content.index(stop)], stop, "stop"
        message: JSONObject = {"role": "assistant", "content": content}
        if reasoning is not None:
            message[cfg.think] = reasoning
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        completion_tokens = len((reasoning or "").split()) + len((content or "").split())
        return {
            "id": "chatcmpl-stub",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": cfg.model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": finish, "stop_reason": stop_reason}
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def _error(status: int, message: str, kind: str) -> web.Response:
    body = {"object": "error", "message": message, "type": kind, "code": status}
    return web.json_response(body, status=status)


def _drop(request: web.Request) -> web.StreamResponse:
    # Close the socket before any byte of the answer: the client sees a server disconnect.
    if request.transport is not None:
        request.transport.close()
    raise asyncio.CancelledError  # aiohttp treats a cancelled handler on a closed transport quietly


async def _partial(request: web.Request, payload: bytes) -> web.StreamResponse:
    # Headers promise the whole body; half of it arrives, then the connection closes.
    resp = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    resp.content_length = len(payload)
    await resp.prepare(request)
    await resp.write(payload[: len(payload) // 2])
    if request.transport is not None:
        request.transport.close()
    raise asyncio.CancelledError


class StubServer:
    """The stub in a background thread: `with StubServer(config) as stub: use(stub.base_url)`."""

    def __init__(self, config: StubConfig | None = None, *, port: int = 0) -> None:
        self.config = config or StubConfig()
        self._stub = _Stub(self.config)
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def stats(self) -> StubStats:
        return self._stub.stats

    def __enter__(self) -> StubServer:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tpt-openai-stub", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    async def _start(self) -> None:
        self._runner = await start_runner(self._stub, self._port)
        self.port = self._runner.addresses[0][1]

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._thread is not None and self._runner is not None
        try:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
            self._loop.close()


async def start_runner(stub: _Stub, port: int) -> web.AppRunner:
    """Serve on 127.0.0.1:port (0: any free port); no access log, which costs CPU per request."""
    # handler_cancellation: a client that times out on a 'hang' cancels the sleeping handler.
    runner = web.AppRunner(stub.app(), access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    return runner


def augment_argv(src: object, out: object, base_url: str, *extra: str) -> list[str]:
    """`tpt augment` arguments (after `tpt`) for a run of SRC into OUT against the stub at base_url."""
    return ["augment", str(src), "--output", str(out), "--backend", "openai", "--base-url", base_url,
            "--model", "stub", *extra]  # fmt: skip


class StubProcess:
    """The stub as a subprocess, with its own core and GIL: `with StubProcess(args) as stub`."""

    def __init__(self, args: list[str] | tuple[str, ...] = (), *, max_seconds: float = 600.0) -> None:
        self.args = [*args, "--max-seconds", str(max_seconds)]
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> StubProcess:
        cmd = [sys.executable, "-m", "tpt.testing.openai_stub", "--port", "0", *self.args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else ""
        if "listening on " not in line:
            self.__exit__()
            raise RuntimeError(f"openai stub did not start (said {line!r})")
        self.base_url = line.split("listening on ", 1)[1].strip()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def parse_args(argv: list[str] | None = None) -> tuple[StubConfig, int, float]:
    """CLI flags -> (config, port, max_seconds)."""
    p = argparse.ArgumentParser(prog="python -m tpt.testing.openai_stub", description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=8000, help="0 picks a free port (printed on stdout)")
    p.add_argument("--model", default="stub")
    p.add_argument("--latency-ms", type=float, default=100.0, help="(median) latency per answer")
    p.add_argument(
        "--latency-sigma",
        type=float,
        default=0.0,
        help="log-normal spread of the latency (1.288: p99 is 20x the median)",
    )
    p.add_argument("--timing-out", default=None, help="write per-prompt attempt timings here on exit")
    p.add_argument("--words", type=int, default=48)
    p.add_argument("--think", choices=THINK_MODES, default="plain")
    p.add_argument("--fail-rate", type=float, default=0.0)
    p.add_argument("--faults", default="500,503,429,drop,partial,garbage", help="comma-separated tokens")
    p.add_argument("--length-rate", type=float, default=0.0)
    p.add_argument("--schedule", default="", help="JSON [[substring, [fault, ...]], ...] or @file.json")
    p.add_argument("--retry-after-s", type=float, default=1.0)
    p.add_argument("--hang-s", type=float, default=3600.0)
    p.add_argument("--slow-s", type=float, default=2.0)
    p.add_argument("--api-key-env", default=None, help="require the key held in this env variable")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--token-ms", type=float, default=0.0, help="streaming: time between chunks")
    p.add_argument("--loop-after", type=int, default=0, help="loop after this many words (0: never)")
    p.add_argument("--loop-rate", type=float, default=1.0, help="share of prompts that loop")
    p.add_argument(
        "--stream-mode", choices=STREAM_MODES, default="sse", help="how streamed requests are answered"
    )
    p.add_argument("--max-seconds", type=float, default=3600.0, help="exit after this long, whatever")
    a = p.parse_args(argv)
    schedule_text = a.schedule
    if schedule_text.startswith("@"):
        with open(schedule_text[1:], encoding="utf-8") as f:
            schedule_text = f.read()
    schedule = tuple((s, tuple(f)) for s, f in json.loads(schedule_text)) if schedule_text else ()
    config = StubConfig(
        model=a.model,
        latency_ms=a.latency_ms,
        latency_sigma=a.latency_sigma,
        timing_out=a.timing_out,
        words=a.words,
        think=a.think,
        fail_rate=a.fail_rate,
        faults=tuple(x for x in a.faults.split(",") if x),
        length_rate=a.length_rate,
        schedule=schedule,
        retry_after_s=a.retry_after_s,
        hang_s=a.hang_s,
        slow_s=a.slow_s,
        api_key=os.environ.get(a.api_key_env) if a.api_key_env else None,
        seed=a.seed,
        token_ms=a.token_ms,
        loop_after=a.loop_after,
        loop_rate=a.loop_rate,
        stream_mode=a.stream_mode,
    )
    return config, a.port, a.max_seconds


async def _serve(config: StubConfig, port: int, max_seconds: float) -> None:
    stub = _Stub(config)
    runner = await start_runner(stub, port)
    host, bound = runner.addresses[0][:2]
    print(f"tpt openai stub listening on http://{host}:{bound}/v1", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    parent = os.getppid()
    deadline = time.monotonic() + max_seconds
    # Stop by ourselves: at the deadline, or when the parent that started us is gone (no orphans).
    while not stop.is_set() and time.monotonic() < deadline and os.getppid() == parent:
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0)
        except TimeoutError:
            pass
    await runner.cleanup()
    if config.timing_out:
        with open(config.timing_out, "w", encoding="utf-8") as f:
            json.dump(stub.timings, f)


def main(argv: list[str] | None = None) -> int:
    config, port, max_seconds = parse_args(argv)
    asyncio.run(_serve(config, port, max_seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
