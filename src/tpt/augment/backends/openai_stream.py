"""Reading a streamed chat completion (server-sent events) while the loop guard watches it.

With the loop guard on, the openai backend asks for `"stream": true` (and the usage in a last chunk,
`stream_options.include_usage`), as vLLM, SGLang and llama.cpp serve it: `data: {chunk}` lines with
`choices[0].delta` holding `content` and/or a reasoning field (`reasoning_content`, or `reasoning`
in vLLM >= 0.11), then `data: [DONE]`. Each delta goes through a `TextLoopGuard`; once it fires, the
reader stops and the caller closes the connection, which those servers take as an abort: they stop
generating for it (what the benchmark measures against the stub, which counts what it produced).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from tpt.augment.loopguard import TextLoopGuard


class StreamError(ValueError):
    """The stream broke the protocol (a chunk that is not JSON, or it ended without a finish)."""


@dataclass(slots=True)
class Streamed:
    """What a stream delivered (cut where the loop began when the guard stopped it)."""

    content: str = ""
    reasoning: str = ""
    finish: str | None = None
    choice: dict[str, Any] = field(default_factory=dict)
    """The last chunk's choice that carried the finish_reason (stop_reason / matched_stop live there)."""
    usage: dict[str, Any] = field(default_factory=dict)
    received: str = ""
    """Everything generated before the stream ended or was stopped (reasoning, then content)."""
    loop_start: int | None = None
    """Set when the guard stopped the stream: where the loop began, in the guard's text pieces."""


async def read_stream(lines: AsyncIterator[bytes], guard: TextLoopGuard | None) -> Streamed:
    """Read server-sent events until [DONE], the end of the stream, or the guard firing."""
    out = Streamed()
    reasoning: list[str] = []
    content: list[str] = []
    fed = 0  # characters fed to the guard
    content_at = None  # where the content began in what was fed
    done = False
    async for raw in lines:
        line = raw.strip()
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
        if isinstance(chunk.get("usage"), dict):
            out.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            for name in ("reasoning_content", "reasoning", "content"):
                piece = delta.get(name)
                if not isinstance(piece, str) or not piece:
                    continue
                if name == "content":
                    if content_at is None:
                        if reasoning and guard is not None:
                            guard.feed_text("\n")  # reasoning and answer are separate texts
                            fed += 1
                        content_at = fed
                    content.append(piece)
                else:
                    reasoning.append(piece)
                if guard is not None:
                    fed += len(piece)
                    if guard.feed_text(piece):
                        return _stopped(out, guard, "".join(reasoning), "".join(content), content_at)
            if choice.get("finish_reason"):
                out.finish, out.choice = choice["finish_reason"], choice
    if guard is not None and guard.finish():  # the last piece, held back until the end
        return _stopped(out, guard, "".join(reasoning), "".join(content), content_at)
    out.reasoning, out.content = "".join(reasoning), "".join(content)
    out.received = out.reasoning + out.content
    if out.finish is None:
        where = "before [DONE]" if done else "without [DONE]"
        raise StreamError(f"the stream ended {where} and without a finish_reason")
    return out


def _stopped(
    out: Streamed, guard: TextLoopGuard, reasoning: str, content: str, content_at: int | None
) -> Streamed:
    out.received = reasoning + content
    cut = guard.loop_start_char or 0
    if content_at is None or cut < content_at:  # the loop began in the reasoning (or there is no answer)
        out.reasoning, out.content = reasoning[:cut], ""
    else:
        out.reasoning, out.content = reasoning, content[: cut - content_at]
    out.finish, out.loop_start = "repetition", guard.loop_start
    return out
