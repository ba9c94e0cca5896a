"""The sampled records as the browser shows them: document and thinking (cut to a size a page can hold),
the check result with its reason, the record's flags, and where the loop guard stopped it."""

from __future__ import annotations

import json
from typing import Any

from tpt.core.jsontypes import JSONObject
from tpt.inspect.dirs import Sampled
from tpt.inspect.scan import fields_of_object

BUCKETS = ((0, "0-63"), (64, "64-255"), (256, "256-1023"), (1024, "1024-4095"), (4096, "4096+"))
"""Length buckets of the browser's filter, by thinking tokens."""


def bucket(tokens: int | None) -> str:
    if tokens is None:
        return "no token counts"
    label = BUCKETS[0][1]
    for low, name in BUCKETS:
        if tokens >= low:
            label = name
    return label


def _cut(text: Any, limit: int) -> tuple[str, int]:
    if not isinstance(text, str):
        return "", 0
    return (text, 0) if len(text) <= limit else (text[:limit], len(text) - limit)


def sample_json(s: Sampled, max_chars: int) -> JSONObject:
    """One browser entry; every string in it is data (the page shows it as text, never as markup)."""
    try:
        obj = json.loads(s.raw)
        if s.nested:
            obj = obj.get("record")
    except (ValueError, AttributeError):
        obj = None
    base = {"file": s.file, "line": s.line, "check": s.check, "reason": s.detail}
    if not isinstance(obj, dict):
        return {**base, "source": "(unreadable)", "unreadable": True, "text": "", "thinking": "",
                "flags": ["the line is not valid UTF-8 JSON"], "bucket": bucket(None)}  # fmt: skip
    f = fields_of_object(obj, "(unknown)")
    text, text_more = _cut(obj.get("text"), max_chars)
    thinking, thinking_more = _cut(obj.get("thinking"), max_chars)
    flags = []
    if obj.get("doc_truncated"):
        flags.append(f"document truncated to the teacher's budget ({obj.get('doc_tokens')} tokens)")
    if obj.get("finish_reason") == "length":
        flags.append("cut by the length limit (finish_reason 'length')")
    if obj.get("thinking_closed") is False:
        flags.append("the thinking was never closed")
    if isinstance(ct := obj.get("control_tokens"), dict):
        flags.append(f"control strings {ct.get('action')}: {json.dumps(ct.get('found'), ensure_ascii=False)}")
    if obj.get("duplicate_of") is not None:
        flags.append(f"repeats the id of input item {obj.get('duplicate_of')}")
    loop = obj.get("loop") if isinstance(obj.get("loop"), dict) else None
    if loop:
        flags.append(
            f"stopped by the loop guard: the loop began at generated token {loop.get('start_token')}, "
            f"{loop.get('tokens')} tokens were generated ({loop.get('policy')})"
        )
    source = f.source if not isinstance(f, str) else str(obj.get("source") or "(unknown)")
    return {
        **base,
        "id": obj.get("id") if isinstance(obj.get("id"), str | int | float) else json.dumps(obj.get("id")),
        "source": source,
        "finish": obj.get("finish_reason") if isinstance(obj.get("finish_reason"), str) else "(none)",
        "doc_tokens": None if isinstance(f, str) else f.doc_tokens,
        "thinking_tokens": None if isinstance(f, str) else f.thinking_tokens,
        "bucket": bucket(None if isinstance(f, str) else f.thinking_tokens),
        "text": text,
        "text_more": text_more,
        "thinking": thinking,
        "thinking_more": thinking_more,
        "flags": flags,
        "loop": {
            "start_token": loop.get("start_token"),
            "tokens": loop.get("tokens"),
            "policy": loop.get("policy"),
        }
        if loop
        else None,  # fmt: skip
    }
