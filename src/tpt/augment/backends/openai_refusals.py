"""Which request fields a server's refusal (an HTTP 400 or 422 body) says it does not accept.

The openai backend sends sampling controls beyond the OpenAI API's own (top_k, min_p,
repetition_penalty; --sampling-fields full), and a few servers refuse a request that names a field
they do not know. What they answer (tests/augment/data/refusals.json holds one body of each):

- `transformers serve` (5.x): 422 `{"detail": "Unexpected fields in the request: {'top_k', 'min_p'}"}`
- FastAPI servers whose pydantic models forbid extra fields: 422 `{"detail": [{"type":
  "extra_forbidden", "loc": ["body", "min_p"], ...}]}`; SGLang and vLLM turn the same errors into text
  inside their 400 bodies (`{"object": "error", "message": ...}`, `{"error": {"message": ...}}`)
- llama.cpp's server: 400 `{"error": {"code": 400, "message": "Unsupported param: best_of", ...}}`
- the OpenAI API: 400 `{"error": {"message": "Unrecognized request argument supplied: top_k", ...}}`
- Rust servers on axum with serde's `deny_unknown_fields`: 422 text `Failed to deserialize the JSON
  body into the target type: unknown field `min_p`, expected one of ...`

A refusal of a value is not a refusal of the field: TGI's "`top_p` must be > 0.0 and < 1.0" or vLLM's
"'max_tokens' or 'max_completion_tokens' is too large" (with `param: max_tokens`) name no field here.
Only names the request carried count, so a message that mentions other words cannot drop anything.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from typing import Any

_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_QUOTED = re.compile(r"'([^'\s]+)'|\"([^\"\s]+)\"")
_MESSAGE_PATTERNS = (
    # transformers serve: a Python set of the names
    re.compile(r"unexpected fields? in the request:\s*\{([^}]*)\}", re.I),
    # llama.cpp: one name
    re.compile(rf"unsupported param(?:eter)?s?:\s*({_NAME})", re.I),
    # the OpenAI API: one name, or several separated by commas
    re.compile(rf"unrecognized request arguments? supplied:\s*({_NAME}(?:\s*,\s*{_NAME})*)", re.I),
    # serde (deny_unknown_fields): the first name in backticks after "unknown field"
    re.compile(r"unknown field `([^`]+)`", re.I),
    # pydantic errors printed as Python reprs (SGLang, vLLM): 'type': 'extra_forbidden', 'loc': (...)
    re.compile(r"'type':\s*'extra_forbidden',\s*'loc':\s*\(([^)]*)\)"),
    # pydantic's ValidationError text: "<name>\n  Extra inputs are not permitted [type=extra_forbidden"
    re.compile(rf"(?m)^\s*(?:body\.)?({_NAME})\s*\n\s*Extra inputs are not permitted"),
)
_EXTRA_TYPES = frozenset({"extra_forbidden", "value_error.extra"})  # pydantic 2, pydantic 1


def refused_fields(payload: bytes, sent: Collection[str]) -> frozenset[str]:
    """The names in `sent` that the refusal body says the server does not accept (empty: none)."""
    if not sent:
        return frozenset()
    found: set[str] = set()
    text = payload[:65536].decode("utf-8", "replace")
    try:
        data: Any = json.loads(text)
    except ValueError:
        data = None
    texts = [text, *_strings(data)]  # JSON escapes newlines and quotes: read the decoded strings too
    for pattern in _MESSAGE_PATTERNS:
        for piece in texts:
            for match in pattern.finditer(piece):
                found.update(_names(match.group(1)))
    found.update(_extra_locations(data))
    return frozenset(name for name in found if name in sent)


def _names(group: str) -> list[str]:
    quoted = [a or b for a, b in _QUOTED.findall(group)]
    if quoted:
        return [name for name in quoted if name != "body"]  # a pydantic loc: ('body', 'min_p')
    return [part.strip() for part in group.split(",") if part.strip()]


def _strings(data: Any, depth: int = 0) -> Iterator[str]:
    if depth > 8:
        return
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for value in data.values():
            yield from _strings(value, depth + 1)
    elif isinstance(data, list):
        for value in data:
            yield from _strings(value, depth + 1)


def _extra_locations(data: Any, depth: int = 0) -> Iterator[str]:
    """Names of FastAPI's structured errors of an extra field: {"type": "extra_forbidden", "loc":
    ["body", name]}, anywhere in the body."""
    if depth > 8:
        return
    if isinstance(data, list):
        for value in data:
            yield from _extra_locations(value, depth + 1)
    elif isinstance(data, dict):
        loc = data.get("loc")
        if data.get("type") in _EXTRA_TYPES and isinstance(loc, list):
            names = [str(part) for part in loc if part != "body"]
            if len(names) == 1:  # a top-level field of the request, not one inside a message
                yield names[0]
        for value in data.values():
            yield from _extra_locations(value, depth + 1)
