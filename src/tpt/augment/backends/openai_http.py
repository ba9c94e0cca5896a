"""The `openai` backend: any OpenAI-compatible chat server (vLLM, SGLang, llama.cpp, TGI, APIs).

One asyncio loop in a background thread drives an aiohttp session. The caller's thread pulls
requests lazily and hands them over in small batches; results come back through a queue in
completion order. At most `concurrency` requests are on the wire (one waiting out its retry
backoff keeps its slot) and at most 2 x concurrency are held between the input iterator and the
consumer, so memory is flat for an unbounded stream. Why aiohttp: at 64 requests in flight against
a 100 ms server it stays near the ideal time, where httpx and the openai SDK do not
(docs/backends-http.md).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import queue
import random
import sys
import threading
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import yarl

from tpt.augment.backends.base import NEUTRAL_SAMPLING, GenerationRequest, GenerationResult, SamplingParams
from tpt.augment.backends.base import OPTION_DEFAULTS as D
from tpt.augment.backends.openai_protocol import (
    as_text,
    model_ids,
    normalize_base_url,
    parse_retry_after,
    server_message,
)
from tpt.augment.backends.openai_refusals import refused_fields
from tpt.augment.backends.openai_schedule import Feeder, Run
from tpt.augment.backends.openai_stream import NotAStream, Streamed, StreamError, judge_completed, read_stream
from tpt.augment.loopguard import FINISH_REPETITION, TEXT_PIECE, LoopGuardOptions, TextLoopGuard
from tpt.augment.truncation import truncate_approx, truncate_texts
from tpt.core.control_tokens import common_markers, controls
from tpt.core.errors import (
    BackendError,
    ConfigError,
    MissingDependencyError,
    ServerUnusableError,
    TransientBackendError,
)
from tpt.core.jsontypes import JSONObject

log = logging.getLogger(__name__)

ERROR_KINDS = (
    "server_error", "rate_limited", "timeout", "connection", "bad_response", "bad_request",
    "content_filter",
)  # fmt: skip
"""A failed result's `error` is '<kind>: <detail>' with kind from this list."""
FATAL_STATUS = (401, 403, 404, 405)
"""Statuses no document can cause (key, URL, model): they stop the run whenever they come."""
RETRY_STATUS = (408, 409, 425, 429)
"""4xx statuses worth retrying; every 5xx is retried too."""
REJECTIONS_BEFORE_FATAL = 4
"""This many 4xx rejections before any success mean the request shape is wrong (an --engine-arg
the server refuses, max_tokens over the context), not the documents: the run stops."""
RETRY_AFTER_CAP_S = 300.0
RATE_LIMIT_WINDOW = 32
"""A 429 holds off every request only when at least half of this many latest answers were 429s (the
server rate-limits everyone); a lone 429 delays its own request alone, so one document's 429 never
stalls the others (benchmarks/augment_soak.py measured a 10% fault mix stalling the run before)."""
SAMPLING_FIELDS = ("full", "standard")
"""--sampling-fields: full sends every sampling control (NEUTRAL_SAMPLING: top-k off, min-p 0, no
penalties), so a server's own defaults (vLLM applies the model's generation_config, llama.cpp a top-k
of 40) cannot change the decoding; standard sends only the OpenAI API's own fields, for hosted APIs that
refuse the others."""
_STANDARD_FIELDS = ("presence_penalty", "frequency_penalty")
# Engine-specific names of the same controls (llama-cpp-python's server calls it repeat_penalty), and
# values: llama-cpp-python 0.3.36 refuses top_k -1 (HTTP 500, "greater than or equal to 0"); 0 is its off.
_ENGINE_FIELDS: dict[str, JSONObject] = {"llama.cpp": {"repeat_penalty": 1.0, "top_k": 0}}
PAPER_SAMPLING = ("temperature", "top_p", "max_tokens", "stop")
"""Fields never dropped when a server refuses them: without them the decoding is not the paper's."""
_NOT_SAMPLING = ("model", "continue_final_message", "add_generation_prompt", "stream", "stream_options")


class _FieldsRefused(Exception):
    """The server refused the request naming fields it does not accept (openai_refusals.py)."""

    def __init__(self, fields: frozenset[str], detail: str) -> None:
        super().__init__(detail)
        self.fields, self.detail = fields, detail


class _Rejected(Exception):
    """The server refused this one request (a non-retryable 4xx, a content filter)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def _transient(kind: str, detail: str, retry_after: float | None = None) -> TransientBackendError:
    err = TransientBackendError(f"{kind}: {detail}")
    err.kind = kind  # type: ignore[attr-defined]
    err.retry_after = retry_after  # type: ignore[attr-defined]
    return err


class OpenAIHttpBackend:
    """Chat completions over HTTP with bounded concurrency, per-request scheduling and retries."""

    name = "openai"

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        api_key: str | None = None,
        api_key_env: str = D.api_key_env,
        concurrency: int = D.concurrency,
        request_timeout_s: float = D.request_timeout_s,
        max_retries: int = D.max_retries,
        tokenizer: str | None = None,
        open_think: str = D.open_think,
        engine_args: Mapping[str, object] | None = None,
        sampling_fields: str = D.sampling_fields,
        server_engine: str | None = None,
        retry_base_s: float = 0.5,
        retry_max_s: float = 60.0,
    ) -> None:
        self.model_id = model
        self.base_url = normalize_base_url(base_url)
        self._api_key_env = api_key_env
        # The key lives only in this header dict: never in a message, repr, log line or file.
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self.concurrency = concurrency
        self.request_timeout_s = request_timeout_s
        self.max_retries = max_retries
        # "auto" means off here: hosted APIs refuse the prefill fields.
        self.open_think = open_think == "on"
        self.engine_args = dict(engine_args or {})
        self.sampling_fields = sampling_fields
        self.server_engine = server_engine
        """The engine of a server tpt manages (--serve), whose own names for sampling controls are
        sent too; None for a server tpt did not start."""
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self._tokenizer = _load_tokenizer(tokenizer) if tokenizer else None
        # The server templates and tokenizes the prompt itself, parsing control tokens in it: the
        # stage applies --control-tokens to documents holding these strings (core/control_tokens.py).
        self.control_strings = controls(self._tokenizer) if self._tokenizer else common_markers()
        self.stats: Counter[str] = Counter()
        """requests, attempts, retried:<kind>, failed:<kind>: for the run summary."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: aiohttp.ClientSession | None = None
        self._checked = False
        self._any_success = False
        self._rejections = 0
        self._pause_until = 0.0
        self._answers_429: deque[bool] = deque(maxlen=RATE_LIMIT_WINDOW)  # latest answers: a 429?
        self._closed = False
        self._loop_guard = LoopGuardOptions(enabled=False)
        """The run's loop guard (set by generate): when on, each request is streamed and watched."""
        self._template: JSONObject = {}
        """The fields every request of the current run shares (the Run's own dict: a field the server
        refuses is dropped from it, so later requests go without it)."""
        self._droppable: frozenset[str] = frozenset()
        """Fields of the template a server may refuse and the run go on without (_droppable_fields)."""
        self._refused: set[str] = set()
        """Fields the server refused, dropped from every request since."""
        self.notice_stream: Any = sys.stderr
        """Where the one-line notes about the server go."""

    def __repr__(self) -> str:
        return f"OpenAIHttpBackend(model={self.model_id!r}, base_url={self.base_url!r})"

    @property
    def notices(self) -> dict[str, str]:
        """What the run should know about the server (summary.json's `notices`): {} when nothing."""
        out = {}
        if n := self.stats["unstreamed"]:
            out["stream_ignored"] = (
                f'the server at {self.base_url} ignored "stream": {n} answers to streamed requests '
                "came as one JSON body; the loop guard judged those trajectories after generation "
                "(loops are cut and flagged as for streamed ones, but their tokens were all generated); "
                "--loop-guard off asks for plain answers"
            )
        return out

    def truncate(self, texts: list[str], max_tokens: int) -> list[tuple[str, int, bool]]:
        """Cut texts to max_tokens: exact with a tokenizer, else ~4 characters per token."""
        if self._tokenizer is not None:
            return truncate_texts(self._tokenizer, texts, max_tokens)
        return [truncate_approx(text, max_tokens) for text in texts]

    def generate(
        self, requests: Iterable[GenerationRequest], sampling: SamplingParams
    ) -> Iterator[GenerationResult]:
        """Yield one result per request in completion order, pulling requests as slots free."""
        self._start()
        assert self._loop is not None
        self._loop_guard = sampling.loop_guard
        self._template = self.body_template(sampling)
        self._droppable = self._droppable_fields(self._template)
        for name in self._refused:  # a server refuses the same fields in every call
            self._template.pop(name, None)
        run = Run(
            self._request,
            self._template,
            concurrency=self.concurrency,
            open_think=self.open_think,
            default_seed=sampling.seed,
        )
        feed = Feeder(iter(requests), run, self._loop, self.concurrency)
        try:
            while True:
                feed.top_up()
                if feed.outstanding == 0:
                    return
                item = self._next_item(run.results)
                while True:  # drain what is ready; stop to top up once a chunk of room is free
                    if isinstance(item, BaseException):
                        raise item
                    feed.outstanding -= 1
                    yield item
                    if feed.wants_more():
                        break
                    try:
                        item = run.results.get_nowait()
                    except queue.Empty:
                        break
        finally:  # a consumer that stops early (break, error, Ctrl-C) cancels what is in flight
            if self._loop is not None and self._loop.is_running():
                asyncio.run_coroutine_threadsafe(run.cancel(), self._loop).result(timeout=30)

    def _next_item(self, results: queue.SimpleQueue) -> Any:
        while True:
            try:
                return results.get(timeout=1.0)
            except queue.Empty:
                if self._thread is None or not self._thread.is_alive():
                    msg = "the openai backend's HTTP thread stopped unexpectedly"
                    raise BackendError(msg) from None

    def close(self) -> None:
        """Close the HTTP session and stop the loop thread; idempotent."""
        self._closed = True
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        if self._session is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(self._session.close(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()
        self._loop = self._thread = self._session = None

    def __enter__(self) -> OpenAIHttpBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        if self._closed:
            raise BackendError("the openai backend was closed; build a new one")
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(
                target=self._loop.run_forever, name="tpt-openai-http", daemon=True
            )
            self._thread.start()
            asyncio.run_coroutine_threadsafe(self._open_session(), self._loop).result()
        if not self._checked:
            try:
                asyncio.run_coroutine_threadsafe(self._preflight(), self._loop).result()
            except BaseException:
                self.close()  # a whole-run failure: leave no session or thread behind
                raise
            self._checked = True

    async def _open_session(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.concurrency + 1,  # one connection per request (HTTP/1.1), + the preflight
            limit_per_host=0,
            ttl_dns_cache=300,
            # Below uvicorn's 5 s idle timeout (vLLM, SGLang): never reuse a socket it just closed.
            keepalive_timeout=4.0,
        )
        timeout = aiohttp.ClientTimeout(
            total=self.request_timeout_s, sock_connect=min(30.0, self.request_timeout_s)
        )
        # No cookie jar (API servers set none) and no trust_env: aiohttp's trust_env makes two
        # thread-pool round trips per request (netrc, proxy), measured as 60% of the client CPU.
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            headers=self._headers,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        self._url = yarl.URL(self.base_url + "/chat/completions")
        # Still honour HTTP(S)_PROXY / NO_PROXY like the openai SDK, looked up once per session.
        try:
            self._proxy, self._proxy_auth = aiohttp.helpers.get_env_proxy_for_url(self._url)
        except LookupError:
            self._proxy = self._proxy_auth = None

    async def _preflight(self) -> None:
        """GET /models once: a wrong URL, key or model name fails the run now, with the fix."""
        assert self._session is not None
        last = ""
        for attempt in range(1, self.max_retries + 2):
            try:
                async with self._session.get(
                    self.base_url + "/models", proxy=self._proxy, proxy_auth=self._proxy_auth
                ) as resp:
                    status, payload = resp.status, await resp.read()
            except (TimeoutError, aiohttp.ClientError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            else:
                if status in (401, 403):
                    raise BackendError(self._auth_message(status, server_message(payload)))
                if status < 500 and status not in RETRY_STATUS:
                    if status == 200:
                        self._check_model(model_ids(payload))
                    return  # a 404 on /models: no listing here; the first requests will tell
                last = f"HTTP {status}: {server_message(payload)}"
            if attempt <= self.max_retries:
                await asyncio.sleep(self._backoff(attempt, None))
        raise BackendError(
            f"cannot reach an OpenAI-compatible server at {self.base_url} after "
            f"{self.max_retries + 1} attempts ({last}). Is it running, and does --base-url "
            "end in /v1?"
        )

    def _check_model(self, served: list[str]) -> None:
        if not served or self.model_id in served:
            return
        import difflib

        close = difflib.get_close_matches(self.model_id, served, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        listing = ", ".join(repr(m) for m in served[:10])
        raise BackendError(
            f"the server at {self.base_url} does not serve model {self.model_id!r}{hint}; "
            f"it serves {listing}. Pass one of these as --model"
        )

    def _auth_message(self, status: int, detail: str) -> str:
        if "Authorization" in self._headers:
            where = f"the key in ${self._api_key_env} was refused"
        else:
            where = f"no key was sent: ${self._api_key_env} is not set"
        return (
            f"HTTP {status} from {self.base_url}: {detail} ({where}; set it, or name another "
            "variable with --api-key-env)"
        )

    async def _request(self, request: GenerationRequest, body: bytes) -> GenerationResult:
        """One request through its retries; a failure for good is a result with `error` set."""
        loop = asyncio.get_running_loop()
        attempt = resent = 0
        went_without = frozenset(self._refused)  # what the body lacks (Run built it just now)
        self.stats["requests"] += 1
        while True:
            attempt += 1
            if (wait := self._pause_until - loop.time()) > 0:  # 429s told everyone to hold off
                await asyncio.sleep(wait)
            self.stats["attempts"] += 1
            try:
                result = await self._attempt(request.key, body, attempt)
            except _FieldsRefused as exc:
                resend = self._without_refused(exc, body, resent)
                if isinstance(resend, _Rejected):
                    self._answers_429.append(False)
                    self.stats[f"failed:{resend.kind}"] += 1
                    self._count_rejection(resend)
                    return self._failed(request, attempt, resend)
                body, went_without, resent = resend, frozenset(self._refused), resent + 1
                continue  # at once: a retry of the same request without the fields, not a fault
            except TransientBackendError as exc:
                kind, retry_after = exc.kind, exc.retry_after  # type: ignore[attr-defined]
                self._answers_429.append(kind == "rate_limited")
                if attempt - resent > self.max_retries:
                    self.stats[f"failed:{kind}"] += 1
                    return self._failed(request, attempt, exc)
                self.stats[f"retried:{kind}"] += 1
                delay = self._backoff(attempt, retry_after)
                if kind == "rate_limited" and self.rate_limited_widely():
                    self._pause_until = max(self._pause_until, loop.time() + delay)
                log.debug("request %s: %s; retry %d in %.2fs", request.key, exc, attempt, delay)
                await asyncio.sleep(delay)
                continue
            except _Rejected as exc:
                self._answers_429.append(False)
                self.stats[f"failed:{exc.kind}"] += 1
                self._count_rejection(exc)
                return self._failed(request, attempt, exc)
            self._answers_429.append(False)
            self._any_success = True
            if went_without:
                return dataclasses.replace(result, refused_fields=tuple(sorted(went_without)))
            return result

    def _droppable_fields(self, template: JSONObject) -> frozenset[str]:
        """The template's fields a server may refuse and the run go on without: the neutral extras
        tpt adds itself (top_k -1, min_p 0, penalties off, llama.cpp's repeat_penalty 1), whose absence
        leaves the server's own default. Never temperature, top_p, max_tokens or stop (the paper's
        sampling), a penalty the user set, nor a field --engine-arg names."""
        neutral = {**NEUTRAL_SAMPLING, "repeat_penalty": 1.0}
        return frozenset(
            name
            for name, value in template.items()
            if name in neutral and value == neutral[name] and name not in self.engine_args
        )

    def _without_refused(self, exc: _FieldsRefused, body: bytes, resent: int) -> bytes | _Rejected:
        """The body again without the fields the server refused (dropped from the run's template too,
        with a one-line note the first time), or why it cannot go without them."""
        kept = sorted(exc.fields - self._droppable)
        if kept:
            why = (
                "they set the paper's sampling"
                if set(kept) & set(PAPER_SAMPLING)
                else "they carry a value you set (--engine-arg, a penalty) or one the backend needs"
            )
            return _Rejected(
                "bad_request", f"{exc.detail} (the server refuses {', '.join(kept)}: not dropped, as {why})"
            )
        if resent > len(self._droppable):  # each resend drops one more; past that the server repeats itself
            return _Rejected("bad_request", exc.detail)
        new = sorted(exc.fields - self._refused)
        if new:
            self._refused.update(new)
            for name in new:
                self._template.pop(name, None)
            status = exc.detail.partition(":")[0]  # "HTTP 422"
            print(
                f"tpt augment: note: the server at {self.base_url} does not accept {', '.join(new)} "
                f"({status}); sending every request without them, so the server's own defaults apply "
                "to these (each record's provenance.sampling says what was sent; --sampling-fields "
                "standard sends only the OpenAI API's fields)",
                file=self.notice_stream,
                flush=True,
            )
        data = json.loads(body)
        for name in self._refused:
            data.pop(name, None)
        return json.dumps(data).encode()

    def rate_limited_widely(self) -> bool:
        """Whether the latest answers say the server rate-limits everyone (see RATE_LIMIT_WINDOW)."""
        return sum(self._answers_429) * 2 >= RATE_LIMIT_WINDOW

    def _failed(self, request: GenerationRequest, attempts: int, exc: Exception) -> GenerationResult:
        return GenerationResult(
            key=request.key, attempts=attempts, error=str(exc), prefilled_think=self.open_think
        )

    def _count_rejection(self, exc: _Rejected) -> None:
        if self._any_success or exc.kind != "bad_request":
            return
        self._rejections += 1
        if self._rejections >= REJECTIONS_BEFORE_FATAL:
            raise ServerUnusableError(
                f"the server at {self.base_url} rejected the first {self._rejections} requests "
                f"({exc}); check --model, --engine-arg and --max-thinking-tokens against the "
                "server's limits (a hosted API that refuses top_k, min_p or repetition_penalty "
                "needs --sampling-fields standard)"
            )

    async def _attempt(self, key: int, body: bytes, attempt: int) -> GenerationResult:
        assert self._session is not None
        try:
            async with self._session.post(
                self._url, data=body, proxy=self._proxy, proxy_auth=self._proxy_auth
            ) as resp:
                status = resp.status
                if status == 200 and self._loop_guard.enabled:
                    ctype = resp.headers.get("Content-Type", "")
                    if _is_json(ctype):  # the server ignored "stream": one ordinary body
                        return self._unstreamed(key, await resp.read(), attempt)
                    guard = TextLoopGuard(self._loop_guard)
                    try:
                        streamed = await read_stream(resp.content, guard)
                    except NotAStream as exc:
                        if exc.head.lstrip().startswith(b"{"):  # JSON under another Content-Type
                            return self._unstreamed(key, exc.head + await resp.read(), attempt)
                        raise self._not_a_stream(ctype, exc.head + await resp.content.read(200)) from None
                    except StreamError as exc:
                        raise _transient("bad_response", str(exc)) from None
                    if guard.fired:  # closing the connection stops the server generating it
                        resp.close()
                    return self._streamed(key, streamed, attempt)
                payload = await resp.read()
                retry_after = resp.headers.get("Retry-After")
        except TimeoutError:
            raise _transient("timeout", f"no answer within {self.request_timeout_s:g}s") from None
        except aiohttp.ClientError as exc:
            raise _transient("connection", f"{type(exc).__name__}: {exc}") from None
        if status == 200:
            return self._parse(key, payload, attempt)
        detail = f"HTTP {status}: {server_message(payload)}"
        if status in (401, 403):
            raise BackendError(self._auth_message(status, server_message(payload)))
        if status in FATAL_STATUS:
            raise BackendError(f"{detail} from {self._url}; check --base-url and --model")
        if status >= 500 or status in RETRY_STATUS:
            kind = "rate_limited" if status == 429 else "server_error"
            raise _transient(kind, detail, parse_retry_after(retry_after))
        sent = (*self._template, *self._refused, "seed")
        if status in (400, 422) and (names := refused_fields(payload, sent)):
            raise _FieldsRefused(names, detail)
        if 400 <= status < 500:
            raise _Rejected("bad_request", detail)
        raise _transient("bad_response", detail)

    def _parse(self, key: int, payload: bytes, attempt: int) -> GenerationResult:
        try:
            data = json.loads(payload)
            choice = data["choices"][0]
            message = choice["message"]
            text = as_text(message.get("content"))
            # vLLM >= 0.11 says `reasoning`; DeepSeek, SGLang, llama.cpp and older vLLM say
            # `reasoning_content`.
            reasoning = as_text(message.get("reasoning_content"))
            reasoning = reasoning or as_text(message.get("reasoning"))
            finish = choice.get("finish_reason")
            stop = _stop_of(choice)
            usage = data.get("usage") or {}
            prompt_tokens = int(usage.get("prompt_tokens") or 0)
            completion_tokens = int(usage.get("completion_tokens") or 0)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            head = payload[:120].decode("utf-8", "replace")
            raise _transient("bad_response", f"{type(exc).__name__} in body {head!r}") from None
        if finish == "content_filter":
            raise _Rejected("content_filter", "the server's content filter stopped the generation")
        if finish in ("abort", "error"):
            raise _transient("bad_response", f"finish_reason {finish!r}")
        return GenerationResult(
            key=key,
            text=text,
            reasoning=reasoning or None,
            prefilled_think=self.open_think,
            finish_reason="length" if finish == "length" else "stop",
            stop=None if finish == "length" else stop,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            attempts=attempt,
        )

    def _not_a_stream(self, ctype: str, head: bytes) -> Exception:
        """A streamed request answered with neither events nor JSON (an HTML page, plain text): the run
        stops when no request has succeeded yet (the server cannot stream), else it is retried."""
        message = (
            f"the server at {self._url} answered a streamed request (the loop guard streams) with "
            f"{ctype or 'no Content-Type'}, not server-sent events; it began {head[:160]!r}"
        )
        if self._any_success:
            return _transient("bad_response", message)
        return ServerUnusableError(
            f"{message}. Check that --base-url is the API root (ending in /v1), or run with "
            "--loop-guard off if it cannot stream; `tpt augment --check-server` tests the server"
        )

    def _unstreamed(self, key: int, payload: bytes, attempt: int) -> GenerationResult:
        """An answer to a streamed request that came as one JSON body: read as a plain completion, then
        judged by the loop guard after the fact (a loop is cut and flagged as in a stream)."""
        result = self._parse(key, payload, attempt)
        self.stats["unstreamed"] += 1
        if self.stats["unstreamed"] == 1:
            print(
                f'tpt augment: note: the server at {self.base_url} ignores "stream" and answers with '
                "one JSON body; tpt reads those answers as they come and the loop guard judges each "
                "trajectory after generation (summary.json says how many); --loop-guard off asks for "
                "plain answers",
                file=self.notice_stream,
                flush=True,
            )
        judged = judge_completed(result.reasoning or "", result.text, TextLoopGuard(self._loop_guard))
        if judged is None:
            return result
        return dataclasses.replace(
            result,
            text=judged.content,
            reasoning=judged.reasoning or None,
            finish_reason=FINISH_REPETITION,
            stop="loop_guard",
            loop_start=judged.loop_start,
        )

    def _streamed(self, key: int, streamed: Streamed, attempt: int) -> GenerationResult:
        """The result of a streamed answer (stopped by the loop guard or read to its end)."""
        finish = streamed.finish
        if finish == "content_filter":
            raise _Rejected("content_filter", "the server's content filter stopped the generation")
        if finish in ("abort", "error"):
            raise _transient("bad_response", f"finish_reason {finish!r}")
        usage = streamed.usage
        if finish == FINISH_REPETITION:
            # No usage comes for a stream closed early: count what arrived.
            tokens = self._count_tokens(streamed.received)
            return GenerationResult(
                key=key,
                text=streamed.content,
                reasoning=streamed.reasoning or None,
                prefilled_think=self.open_think,
                finish_reason=FINISH_REPETITION,
                stop="loop_guard",
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=tokens,
                attempts=attempt,
                loop_start=streamed.loop_start,
            )
        return GenerationResult(
            key=key,
            text=streamed.content,
            reasoning=streamed.reasoning or None,
            prefilled_think=self.open_think,
            finish_reason="length" if finish == "length" else "stop",
            stop=None if finish == "length" else _stop_of(streamed.choice),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            # A server that sends no usage in a stream (it ignores stream_options): counted here.
            completion_tokens=int(usage.get("completion_tokens") or 0)
            or self._count_tokens(streamed.received),
            attempts=attempt,
        )

    def _count_tokens(self, text: str) -> int:
        """Tokens of generated text the server did not count: in the teacher's tokens when
        --tokenizer names them, else in the guard's text pieces (an estimate)."""
        if self._tokenizer is not None:
            return len(self._tokenizer.encode(text, add_special_tokens=False).ids)
        return len(TEXT_PIECE.findall(text))

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:  # the server said how long: honour it, plus a little jitter
            return min(retry_after, RETRY_AFTER_CAP_S) + random.uniform(0, 0.1 * self.retry_base_s)
        # Exponential with "equal jitter": spreads a burst of failures, never retries at once.
        ceiling = min(self.retry_max_s, self.retry_base_s * 2 ** (attempt - 1))
        return ceiling * random.uniform(0.5, 1.0)

    def body_template(self, sampling: SamplingParams) -> JSONObject:
        """The JSON fields all requests of a run share: model, sampling, prefill, engine_args."""
        body: JSONObject = {
            "model": self.model_id,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens,
        }
        penalties = sampling.penalties()
        if self.sampling_fields == "full":
            body.update(NEUTRAL_SAMPLING)
            body.update(penalties)
            engine_fields = dict(_ENGINE_FIELDS.get(self.server_engine or "", {}))
            if "repeat_penalty" in engine_fields:  # llama.cpp's name for it
                engine_fields["repeat_penalty"] = sampling.repetition_penalty
            body.update(engine_fields)
        else:
            if sampling.repetition_penalty != 1.0:
                raise ConfigError(
                    "--repetition-penalty is not an OpenAI API field: it needs --sampling-fields full "
                    "(hosted APIs have --frequency-penalty and --presence-penalty)"
                )
            body.update({k: penalties[k] for k in _STANDARD_FIELDS})
        if sampling.loop_guard.enabled:  # streamed, so the guard can close a looping request
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if self.open_think:  # vLLM / SGLang / TGI: continue our "<think>\n", don't open a turn
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        body.update(self.engine_args)
        return {k: v for k, v in body.items() if v is not None}  # None in engine_args drops a field

    def sampling_in_force(self, sampling: SamplingParams) -> JSONObject:
        """Every sampling field each request carries (after --engine-arg), and the base seed; a
        field not listed is the server's own default."""
        sent = {
            k: v
            for k, v in self.body_template(sampling).items()
            if k not in _NOT_SAMPLING and k not in self._refused  # a refused field is no longer sent
        }
        return {**sent, "stop": list(sampling.stop), "seed": sampling.seed}


def _is_json(content_type: str) -> bool:
    """application/json, or any +json type (application/problem+json is an error body, read as one)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or kind.endswith("+json")


def _stop_of(choice: JSONObject) -> str | None:
    """Which stop ended a choice: vLLM says `stop_reason` (the stop string, a stop token id, or null
    for the end-of-sequence token), SGLang `matched_stop`; other servers say nothing (None)."""
    for key in ("stop_reason", "matched_stop"):
        if key in choice:
            value = choice[key]
            return value if isinstance(value, str) and value else "eos"
    return None


def _load_tokenizer(path: str) -> Any:
    """A local fast tokenizer: tokenizer.json, a HF directory, or a GGUF file. No downloads."""
    p = Path(path).expanduser()
    file = p / "tokenizer.json" if p.is_dir() else p
    if file.is_file() and file.suffix == ".json":
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(file))
    elif p.exists():
        try:
            from transformers import AutoTokenizer
        except ImportError:
            raise MissingDependencyError("transformers", f"--tokenizer {path}", "hf") from None
        if p.is_file():  # a GGUF file carries its tokenizer
            hf = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name, local_files_only=True)
        else:
            hf = AutoTokenizer.from_pretrained(str(p), use_fast=True, local_files_only=True)
        tokenizer = getattr(hf, "backend_tokenizer", None)
        if tokenizer is None:
            raise ConfigError(f"--tokenizer {path}: no fast tokenizer could be made from it")
    else:
        raise ConfigError(f"--tokenizer {path}: no such file or directory (local paths only)")
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def build(options: dict[str, Any]) -> OpenAIHttpBackend:
    """The registry factory: `tpt augment --backend openai` options -> backend (no network yet)."""
    model = options.get("model")
    if not model:
        raise ConfigError(
            "--backend openai needs --model: the name the server serves (GET <base-url>/models)"
        )
    base_url = options.get("base_url") or os.environ.get("OPENAI_BASE_URL")
    if not base_url:
        raise ConfigError("--backend openai needs --base-url, e.g. http://127.0.0.1:8000/v1 for `vllm serve`")
    api_key_env = D.get(options, "api_key_env")
    concurrency = int(D.get(options, "concurrency"))
    if concurrency < 1:
        raise ConfigError(f"--concurrency must be >= 1, got {concurrency}")
    timeout = float(D.get(options, "request_timeout_s"))
    if timeout <= 0:
        raise ConfigError(f"--request-timeout must be > 0, got {timeout:g}")
    retries = int(D.get(options, "max_retries"))
    if retries < 0:
        raise ConfigError(f"--max-retries must be >= 0, got {retries}")
    open_think = D.get(options, "open_think")
    if open_think not in ("auto", "on", "off"):
        raise ConfigError(f"--open-think must be auto, on or off, got {open_think!r}")
    engine_args = options.get("engine_args") or {}
    if not isinstance(engine_args, dict):
        raise ConfigError("--engine-arg values must form a JSON object of extra request fields")
    if bad := sorted({"messages", "stream", "n"} & set(engine_args)):
        raise ConfigError(f"--engine-arg cannot set {', '.join(bad)}: the backend owns them")
    sampling_fields = D.get(options, "sampling_fields")
    if sampling_fields not in SAMPLING_FIELDS:
        raise ConfigError(
            f"--sampling-fields must be one of {', '.join(SAMPLING_FIELDS)}, got {sampling_fields!r}"
        )
    return OpenAIHttpBackend(
        model=str(model),
        base_url=str(base_url),
        api_key=os.environ.get(api_key_env) or None,
        api_key_env=api_key_env,
        concurrency=concurrency,
        request_timeout_s=timeout,
        max_retries=retries,
        tokenizer=options.get("tokenizer"),
        open_think=open_think,
        engine_args=engine_args,
        sampling_fields=sampling_fields,
        server_engine=options.get("server_engine"),
    )
