"""Reading a streamed chat completion (server-sent events) while the loop guard watches it.

With the loop guard on, the openai backend asks for `"stream": true` (and the usage in a last chunk,
`stream_options.include_usage`), as vLLM, SGLang, TGI and llama.cpp serve it: `data: {chunk}` lines with
`choices[0].delta` holding `content` and/or a reasoning field (`reasoning_content`, or `reasoning`
in vLLM >= 0.11), then `data: [DONE]`. Each delta goes through a `TextLoopGuard`; once it fires, the
reader stops and the caller closes the connection, which those servers take as an abort: they stop
generating for it (what the benchmark measures against the stub, which counts what it produced).

What varies between servers, and is read the same (tests/augment/data/streams/ holds each shape):
the usage only in a last chunk with no choices (vLLM, SGLang), `stop_reason` / `matched_stop` beside
the finish, comment lines (`: keep-alive`) and `event:` lines between events, and a close without
`[DONE]` after a chunk that carried the finish (some proxies). An answer that is not an event stream
at all is `NotAStream` (the caller reads a JSON body as a plain completion: a server that ignores
`stream`); `judge_completed` runs the same guard over such an answer after the fact.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from tpt.augment.loopguard import FINISH_REPETITION, TextLoopGuard
from tpt.core.jsontypes import JSONObject

SSE_FIELDS = (b"data", b"event", b"id", b"retry")
"""The field names of the server-sent events format; a line is one of them, a comment (':'), or blank."""


class StreamError(ValueError):
    """The stream broke the protocol (a chunk that is not JSON, or it ended without a finish)."""


class NotAStream(ValueError):
    """The answer to a streamed request does not begin as server-sent events; `head` is its first line."""

    def __init__(self, head: bytes) -> None:
        super().__init__(f"not a server-sent event stream: {head[:120]!r}")
        self.head = head


@dataclass(slots=True)
class Streamed:
    """What a stream delivered (cut where the loop began when the guard stopped it)."""

    content: str = ""
    reasoning: str = ""
    finish: str | None = None
    choice: JSONObject = field(default_factory=dict)
    """The last chunk's choice that carried the finish_reason (stop_reason / matched_stop live there)."""
    usage: JSONObject = field(default_factory=dict)
    received: str = ""
    """Everything generated before the stream ended or was stopped (reasoning, then content)."""
    loop_start: int | None = None
    """Set when the guard stopped the stream: where the loop began, in the guard's text pieces."""


class _Pieces:
    """The reasoning and content as they arrive, fed to the guard in order (reasoning, a newline, then
    the content: they are separate texts), the same for a stream and for a whole answer."""

    __slots__ = ("guard", "reasoning", "content", "fed", "content_at")

    def __init__(self, guard: TextLoopGuard | None) -> None:
        self.guard = guard
        self.reasoning: list[str] = []
        self.content: list[str] = []
        self.fed = 0  # characters fed to the guard
        self.content_at: int | None = None  # where the content began in what was fed

    def add(self, name: str, piece: str) -> bool:
        """Take one delta of `name` (content, or a reasoning field); True once the guard fired."""
        guard = self.guard
        if name == "content":
            if self.content_at is None:
                if self.reasoning and guard is not None:
                    guard.feed_text("\n")
                    self.fed += 1
                self.content_at = self.fed
            self.content.append(piece)
        else:
            self.reasoning.append(piece)
        if guard is None:
            return False
        self.fed += len(piece)
        return guard.feed_text(piece)

    def finish(self) -> bool:
        """The answer ended: True if the guard fires on its held-back last piece (or had fired)."""
        return self.guard is not None and self.guard.finish()

    def stopped(self, out: Streamed) -> Streamed:
        assert self.guard is not None
        reasoning, content = "".join(self.reasoning), "".join(self.content)
        out.received = reasoning + content
        cut = self.guard.loop_start_char or 0
        if self.content_at is None or cut < self.content_at:  # the loop began in the reasoning
            out.reasoning, out.content = reasoning[:cut], ""
        else:
            out.reasoning, out.content = reasoning, content[: cut - self.content_at]
        out.finish, out.loop_start = FINISH_REPETITION, self.guard.loop_start
        return out

    def whole(self, out: Streamed) -> Streamed:
        out.reasoning, out.content = "".join(self.reasoning), "".join(self.content)
        out.received = out.reasoning + out.content
        return out


def _is_sse_line(line: bytes) -> bool:
    return line.startswith(b":") or line.split(b":", 1)[0].strip() in SSE_FIELDS


async def read_stream(lines: AsyncIterator[bytes], guard: TextLoopGuard | None) -> Streamed:
    """Read server-sent events until [DONE], the end of the stream, or the guard firing. Raises
    NotAStream when the first non-blank line is not an event-stream line (a JSON body, an HTML page)."""
    out = Streamed()
    pieces = _Pieces(guard)
    done = started = False
    async for raw in lines:
        line = raw.strip()
        if not started:
            if not line:
                continue
            if not _is_sse_line(line):
                raise NotAStream(raw)
            started = True
        if not line.startswith(b"data:"):
            continue  # blank lines between events, comments (`: keep-alive`), `event:` lines
        data = line[5:].strip()
        if data == b"[DONE]":
            done = True
            break
        try:
            chunk = json.loads(data)
        except ValueError:
            raise StreamError(f"a stream chunk is not JSON: {data[:80]!r}") from None
        if not isinstance(chunk, dict):
            raise StreamError(f"a stream chunk is a JSON {type(chunk).__name__}, not an object")
        if "error" in chunk and not chunk.get("choices"):  # vLLM, SGLang: an error event mid-stream
            raise StreamError(f"the server sent an error in the stream: {_error_text(chunk['error'])}")
        if isinstance(chunk.get("usage"), dict):
            out.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            for name in ("reasoning_content", "reasoning", "content"):
                piece = delta.get(name)
                if isinstance(piece, str) and piece and pieces.add(name, piece):
                    return pieces.stopped(out)
            if choice.get("finish_reason"):
                out.finish, out.choice = choice["finish_reason"], choice
    if not started:
        raise StreamError("the stream ended before its first event")
    if pieces.finish():  # the last piece, held back until the end
        return pieces.stopped(out)
    pieces.whole(out)
    if out.finish is None:
        where = "before [DONE]" if done else "without [DONE]"
        raise StreamError(f"the stream ended {where} and without a finish_reason")
    return out


def judge_completed(reasoning: str, content: str, guard: TextLoopGuard) -> Streamed | None:
    """Run the guard over a whole answer, as it would have over its stream: the answer cut where the
    loop began (finish 'repetition'), or None when it does not loop."""
    pieces = _Pieces(guard)
    for name, text in (("reasoning", reasoning), ("content", content)):
        if text and pieces.add(name, text):
            return pieces.stopped(Streamed())
    return pieces.stopped(Streamed()) if pieces.finish() else None


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return str(error.get("message") or error)[:300]
    return str(error)[:300]
