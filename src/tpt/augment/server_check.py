"""`tpt augment --check-server`: what an OpenAI-compatible server supports for tpt, found in seconds.

`GET /models`, then five short chat requests (CHECK_TOKENS tokens each) with the run's own request
fields (`--sampling-fields`, `--engine-arg`, ...): a streamed one (streaming, usage in the stream,
finish_reason at the token cap, a reasoning field, latency), a plain one with the same seed, a plain
one with another seed (is `seed` honoured: the same seed gives the same text, another seed another),
and a greedy one twice, the second with a stop string taken from the first one's text (is `stop`
honoured). Sampling is at temperature 1 and top-p 1 for the seed probes, so that two seeds do differ on
a server that honours them.

Each row says what was seen and what tpt does about a gap; a server tpt cannot use for the run as
configured (unreachable, refuses the request, cannot stream while the loop guard is on) exits 4.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tpt.augment.backends.openai_protocol import model_ids, server_message
from tpt.augment.backends.openai_refusals import refused_fields
from tpt.augment.backends.openai_stream import NotAStream, StreamError, read_stream
from tpt.core.errors import EXIT_OK, EXIT_SERVER_UNUSABLE
from tpt.core.jsontypes import JSONObject

CHECK_TOKENS = 10
"""Tokens asked of each check request: enough for the cap to be reached (finish_reason length)."""
PROMPT = "Write a long story about a lighthouse keeper who finds a strange map. Begin at once."
CONTEXT_KEYS = ("max_model_len", "context_length", "context_window", "max_context_length", "n_ctx")


@dataclass(slots=True)
class Row:
    what: str
    seen: str
    action: str
    fatal: bool = False


@dataclass(slots=True)
class Answer:
    status: int
    content_type: str
    body: bytes
    first_byte_s: float
    total_s: float


async def _post(session: Any, url: str, body: Mapping[str, object]) -> Answer:
    started = time.monotonic()
    async with session.post(url, data=json.dumps(body).encode()) as resp:
        first = b""
        async for chunk in resp.content.iter_any():
            first = chunk
            break
        first_byte = time.monotonic() - started
        rest = await resp.read() if first else b""
        return Answer(resp.status, resp.headers.get("Content-Type", ""), first + rest, first_byte,
                      time.monotonic() - started)  # fmt: skip


async def _lines(body: bytes):
    for line in body.splitlines(keepends=True):
        yield line


def _chunks(body: bytes) -> list[JSONObject]:
    out = []
    for line in body.splitlines():
        line = line.strip()
        if line.startswith(b"data:") and line[5:].strip() != b"[DONE]":
            try:
                chunk = json.loads(line[5:])
            except ValueError:
                continue
            if isinstance(chunk, dict):
                out.append(chunk)
    return out


def _plain(answer: Answer) -> JSONObject | None:
    """choices[0] of a plain completion (with the body's usage under '_usage'), or None."""
    try:
        data = json.loads(answer.body)
        choice = dict(data["choices"][0])
        choice["_usage"] = data.get("usage") or {}
        return choice
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def _text(choice: JSONObject | None) -> str:
    if not choice:
        return ""
    message = choice.get("message") or {}
    return "".join(str(message.get(k) or "") for k in ("reasoning_content", "reasoning", "content"))


def context_length(payload: bytes, model: str) -> int | None:
    """The context length a /models listing advertises for `model` (vLLM: max_model_len), if any."""
    try:
        entries = json.loads(payload)["data"]
    except (ValueError, KeyError, TypeError):
        return None
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict) or entry.get("id") not in (model, None):
            continue
        for holder in (entry, entry.get("meta") or {}):
            for key in (*CONTEXT_KEYS, "n_ctx_train"):
                if isinstance(holder, dict) and isinstance(holder.get(key), int) and holder[key] > 0:
                    return int(holder[key])
    return None


@dataclass(frozen=True, slots=True)
class Run:
    """What of the run's configuration the check needs besides the backend."""

    max_doc_tokens: int
    api_key_env: str
    loop_guard: bool
    """The loop guard is on: the run streams, so a server that cannot is unusable."""
    exact_tokens: bool
    """--tokenizer given: tpt counts tokens exactly where the server does not."""
    timeout_s: float = 120.0


async def check(backend: Any, sampling: Any, run: Run) -> list[Row]:
    """The rows of the report (see the module doc); `backend` is the run's openai backend (not started:
    only its URL, model name and request fields are used)."""
    import aiohttp

    base, model = backend.base_url, backend.model_id
    headers = {"Content-Type": "application/json"}
    if key := os.environ.get(run.api_key_env):  # the key goes in this header only, as in the backend
        headers["Authorization"] = f"Bearer {key}"
    timeout = aiohttp.ClientTimeout(total=run.timeout_s)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        rows = await _server_rows(session, base, model, sampling, run)
        if not any(r.fatal for r in rows):
            rows.extend(await _chat_rows(session, backend, sampling, run, base + "/chat/completions"))
    return rows


async def _server_rows(session: Any, base: str, model: str, sampling: Any, run: Run) -> list[Row]:
    """/models: the server answers, serves --model, and how long a context it advertises."""
    import aiohttp

    rows: list[Row] = []
    try:
        async with session.get(base + "/models") as resp:
            status, payload = resp.status, await resp.read()
    except (TimeoutError, aiohttp.ClientError) as exc:
        return [Row("server", f"no answer at {base} ({type(exc).__name__}: {exc})",
                    "is it running, and does --base-url end in /v1?", fatal=True)]  # fmt: skip
    served = model_ids(payload) if status == 200 else []
    if status in (401, 403):
        return [Row("server", f"HTTP {status} on /models: {server_message(payload)}",
                    f"set ${run.api_key_env} (or name another with --api-key-env)", fatal=True)]  # fmt: skip
    if served and model not in served:
        listing = ", ".join(served[:5])
        return [Row("model", f"{model!r} is not served (it serves {listing})", "pass one as --model",
                    fatal=True)]  # fmt: skip
    rows.append(Row("model", f"{model!r} listed" if served else f"/models: HTTP {status}, no listing",
                    "" if served else "a wrong --model shows only in the first requests"))  # fmt: skip
    ctx = context_length(payload, model) if status == 200 else None
    need = run.max_doc_tokens + sampling.max_tokens
    if ctx is None:
        rows.append(Row("context length", "not advertised",
                        f"not checked: a longer prompt + answer fails as bad_request (the run "
                        f"needs {need} + the template)"))  # fmt: skip
    else:
        fits = ctx >= need
        rows.append(Row("context length", f"{ctx} tokens",
                        f"--max-doc-tokens + --max-thinking-tokens = {need}: "
                        + ("fits (plus the template)" if fits else
                           "does NOT fit: long documents will fail as bad_request; lower one of them")))  # fmt: skip
    return rows


async def _chat_rows(session: Any, backend: Any, sampling: Any, run: Run, url: str) -> list[Row]:
    """Chat requests as the run sends them: refused fields, streaming, length, reasoning, seed, stop,
    latency."""
    import aiohttp

    rows: list[Row] = []
    template = backend.body_template(sampling)
    for k in ("stream", "stream_options"):
        template.pop(k, None)
    body = {**template, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": CHECK_TOKENS,
            "temperature": 1.0, "top_p": 1.0, "seed": 1234}  # fmt: skip
    try:
        plain = await _post(session, url, body)
        # As the run does (openai_refusals.py): fields a server refuses that tpt only adds as
        # neutral extras are dropped, and the check goes on without them.
        droppable, dropped = backend._droppable_fields(template), []
        while plain.status in (400, 422) and (names := refused_fields(plain.body, body) & droppable):
            dropped += sorted(names)
            body = {k: v for k, v in body.items() if k not in names}
            plain = await _post(session, url, body)
        if dropped:
            rows.append(Row("refused fields", ", ".join(dropped), "the run drops them (the server's "
                            "defaults apply; summary.json sampling_refused_this_run)"))  # fmt: skip
        streamed = await _post(
            session, url, {**body, "stream": True, "stream_options": {"include_usage": True}}
        )
    except (TimeoutError, aiohttp.ClientError) as exc:
        rows.append(Row("chat request", f"failed: {type(exc).__name__}: {exc}",
                        "the run would fail the same way", fatal=True))  # fmt: skip
        return rows
    if plain.status != 200:
        message = server_message(plain.body)
        named = [k for k in ("top_k", "min_p", "repetition_penalty", "repeat_penalty") if k in message]
        hint = (
            f" ({', '.join(named)}: --sampling-fields standard, or --engine-arg top_k=0 for llama.cpp)"
            if named
            else " (a hosted API may need --sampling-fields standard)"
            if 400 <= plain.status < 500
            else ""
        )
        rows.append(Row("chat request", f"HTTP {plain.status}: {message}",
                        f"the run's requests are refused: fix the option it names{hint}", fatal=True))  # fmt: skip
        return rows
    choice = _plain(plain)
    if choice is None:
        rows.append(Row("chat request", f"not a chat completion: {plain.body[:120]!r}",
                        "tpt cannot read this server", fatal=True))  # fmt: skip
        return rows
    rows.extend(await _stream_rows(streamed, run))
    rows.append(_length_row(choice))
    rows.append(_reasoning_row(choice, streamed))
    other = await _post(session, url, {**body, "seed": 4321})
    rows.append(_seed_row(_text(_plain(streamed_as_plain(streamed)) or choice), _text(choice),
                          _text(_plain(other))))  # fmt: skip
    rows.append(await _stop_row(session, url, body))
    tokens = int(choice["_usage"].get("completion_tokens") or 0)
    rate = f", {tokens / plain.total_s:.0f} tokens/s" if tokens and plain.total_s > 0 else ""
    seen = f"first byte {streamed.first_byte_s * 1000:.0f} ms; {tokens or '?'} tokens in {plain.total_s:.2f} s{rate}"
    rows.append(Row("latency", seen, "one request alone; size --concurrency to the server's batch"))
    return rows


def streamed_as_plain(answer: Answer) -> Answer:
    """A streamed answer's text as a plain completion's body (to compare it with one)."""
    if "json" in answer.content_type:
        return answer
    text = "".join(
        str((c.get("delta") or {}).get(k) or "")
        for chunk in _chunks(answer.body)
        for c in chunk.get("choices") or ()
        for k in ("reasoning_content", "reasoning", "content")
    )
    body = json.dumps({"choices": [{"message": {"content": text}}]}).encode()
    return Answer(200, "application/json", body, answer.first_byte_s, answer.total_s)


async def _stream_rows(answer: Answer, run: Run) -> list[Row]:
    guard_on = run.loop_guard
    if answer.status != 200:
        return [Row("streaming", f"HTTP {answer.status}: {server_message(answer.body)}",
                    "run with --loop-guard off (plain requests)" if guard_on else "not used (--loop-guard off)",
                    fatal=guard_on)]  # fmt: skip
    ctype = answer.content_type.split(";")[0].strip() or "no Content-Type"
    if "json" in ctype:
        return [Row("streaming", f"ignored: one JSON body ({ctype})",
                    "tpt reads it as a plain answer; the loop guard judges each trajectory after generation "
                    "(no tokens saved); --loop-guard off stops asking"),
                Row("usage in stream", "n/a (not streamed)", "usage read from the body")]  # fmt: skip
    try:
        streamed = await read_stream(_lines(answer.body), None)
    except NotAStream as exc:
        return [Row("streaming", f"broken: {ctype}, began {exc.head[:60]!r}",
                    "run with --loop-guard off" if guard_on else "not used (--loop-guard off)", fatal=guard_on)]  # fmt: skip
    except StreamError as exc:
        return [Row("streaming", f"broken: {exc}", "run with --loop-guard off" if guard_on else "not used",
                    fatal=guard_on)]  # fmt: skip
    chunks = _chunks(answer.body)
    done = b"[DONE]" in answer.body
    rows = [Row("streaming", f"yes ({ctype}, {len(chunks)} chunks{'' if done else ', no [DONE]'})",
                "the loop guard stops loops as they are generated" if guard_on else "not used (--loop-guard off)")]  # fmt: skip
    if streamed.usage.get("completion_tokens"):
        rows.append(Row("usage in stream", f"yes ({streamed.usage['completion_tokens']} tokens)", ""))
    else:
        how = "exactly (--tokenizer)" if run.exact_tokens else "as an estimate in text pieces"
        rows.append(Row("usage in stream", "no", f"tpt counts completion_tokens itself, {how}; "
                        "prompt_tokens are 0"))  # fmt: skip
    return rows


def _length_row(choice: JSONObject) -> Row:
    finish = choice.get("finish_reason")
    tokens = int(choice["_usage"].get("completion_tokens") or 0)
    if finish == "length":
        return Row("finish_reason at the cap", "length", "")
    if tokens >= CHECK_TOKENS:
        return Row("finish_reason at the cap", f"{finish!r} at {tokens} tokens (not 'length')",
                   "tpt cannot tell a cut trajectory from a finished one: `tpt validate`'s truncated "
                   "check misses them")  # fmt: skip
    return Row("finish_reason at the cap", f"not reached ({finish!r} after {tokens} tokens)", "not checked")


def _reasoning_row(choice: JSONObject, streamed: Answer) -> Row:
    message = choice.get("message") or {}
    names = [k for k in ("reasoning_content", "reasoning") if message.get(k)]
    names += [k for chunk in _chunks(streamed.body) for c in chunk.get("choices") or ()
              for k in ("reasoning_content", "reasoning") if (c.get("delta") or {}).get(k) and k not in names]  # fmt: skip
    if names:
        return Row("reasoning field", ", ".join(dict.fromkeys(names)), "the thinking is read from it")
    return Row("reasoning field", "none", "thinking read from the content (<think> tags, or all of it)")


def _seed_row(streamed: str, plain: str, other: str) -> Row:
    if not plain:
        return Row("seed", "cannot tell (empty answers)", "")
    if streamed == plain and plain != other:
        return Row("seed", "honoured (same seed, same text; another seed, other text)", "re-runs repeat")
    if plain == other:
        return Row(
            "seed",
            "cannot tell: two seeds gave the same text",
            "greedy decoding? (transformers serve samples only with --engine-arg "
            '\'generation_config="{\\"do_sample\\": true}"\'); records keep the seed sent',
        )
    return Row(
        "seed", "not honoured (the same seed gave other text)", "records keep the seed sent; re-runs differ"
    )


async def _stop_row(session: Any, url: str, body: Mapping[str, object]) -> Row:
    """Greedy (temperature 0), so that the text repeats whatever the server does with seeds: the
    answer, then the same request with a stop string taken from its middle."""
    body = {**body, "temperature": 0.0}
    first = await _post(session, url, body)
    text = _text(_plain(first))
    words = [w for w in text.split() if len(w) >= 3]
    if len(words) < 3:
        return Row("stop strings", "cannot tell (too little text)", "")
    stop = words[len(words) // 2]
    answer = await _post(session, url, {**body, "stop": [*body.get("stop", []), stop]})
    again = _plain(answer)
    if answer.status != 200 or again is None:
        return Row("stop strings", f"refused (HTTP {answer.status})", "check --engine-arg stop", fatal=True)
    got = _text(again)
    if stop not in got and again.get("finish_reason") == "stop" and len(got) < len(text):
        return Row("stop strings", f"honoured (stopped before {stop!r})", "generation ends at </think>")
    if got.rstrip().endswith(stop) and again.get("finish_reason") == "stop" and len(got) <= len(text):
        return Row("stop strings", f"honoured, but {stop!r} is kept at the end of the text",
                   "tpt's extraction drops a </think> that ends the text (same records)")  # fmt: skip
    if stop in got:
        return Row("stop strings", f"ignored ({stop!r} came back in the text)",
                   "tpt cuts the thinking at </think> itself, but the server generates past it (paid tokens)")  # fmt: skip
    return Row("stop strings", "cannot tell", "")


def render(rows: list[Row], base_url: str, *, width: int = 110) -> str:
    """The report: one row per property (wrapped to `width`); rows that make the server unusable: !!."""
    import textwrap

    what_w = max(len(r.what) for r in rows)
    seen_w = 38
    action_w = max(20, width - what_w - seen_w - 6)
    lines = [f"tpt augment --check-server: {base_url}", ""]
    lines.append(f"  {'what'.ljust(what_w)}  {'seen'.ljust(seen_w)}  what tpt does about it")
    for r in rows:
        seen = textwrap.wrap(r.seen, seen_w) or [""]
        action = textwrap.wrap(r.action, action_w) or [""]
        for k in range(max(len(seen), len(action))):
            mark = "!!" if r.fatal and k == 0 else "  "
            head = r.what if k == 0 else ""
            cell = seen[k] if k < len(seen) else ""
            text = action[k] if k < len(action) else ""
            lines.append(f"{mark}{head.ljust(what_w)}  {cell.ljust(seen_w)}  {text}".rstrip())
    usable = not any(r.fatal for r in rows)
    lines += ["", "usable: yes" if usable else "usable: NO (the rows marked !! say why)"]
    return "\n".join(lines)


def collect(cfg: Any) -> tuple[list[Row], str]:
    """The rows for a run's config (AugmentConfig of the openai backend), and the server's base URL."""
    from tpt.augment.backends.openai_http import build

    options = cfg.backend_options
    backend = build(dict(options))
    run = Run(
        max_doc_tokens=cfg.max_doc_tokens,
        api_key_env=options["api_key_env"],
        loop_guard=cfg.sampling.loop_guard.enabled,
        exact_tokens=options.get("tokenizer") is not None,
        timeout_s=min(float(options["request_timeout_s"]), 120.0),
    )
    return asyncio.run(check(backend, cfg.sampling, run)), backend.base_url


def run_check(cfg: Any) -> int:
    """The CLI entry: check, print the table; exit 0 (usable) or EXIT_SERVER_UNUSABLE."""
    started = time.monotonic()
    rows, base_url = collect(cfg)
    print(render(rows, base_url))
    print(f"checked in {time.monotonic() - started:.1f} s")
    return EXIT_SERVER_UNUSABLE if any(r.fatal for r in rows) else EXIT_OK
