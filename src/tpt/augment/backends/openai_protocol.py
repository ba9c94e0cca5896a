"""What crosses the wire to an OpenAI-compatible server, read and written without network code:
base URLs, Retry-After headers, error bodies, model lists and message content."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import yarl

from tpt.core.errors import ConfigError

OPEN_THINK_PREFILL = "<think>\n"
"""The assistant turn tpt opens so that the server continues the thinking (--open-think on)."""


def normalize_base_url(url: str) -> str:
    """'http://h:8000' -> 'http://h:8000/v1'; strips a trailing '/' or '/chat/completions'."""
    url = url.strip().rstrip("/")
    url = url.removesuffix("/chat/completions")
    parsed = yarl.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"--base-url must be an http(s) URL such as http://127.0.0.1:8000/v1, got {url!r}")
    if parsed.path in ("", "/"):
        url += "/v1"  # `vllm serve`, SGLang, llama.cpp and TGI all serve the API under /v1
    return url


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # the other form the standard allows: an HTTP date
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def server_message(payload: bytes) -> str:
    """The error text of an OpenAI ({"error": {"message"}}) or vLLM ({"message"}) error body."""
    try:
        data = json.loads(payload)
    except ValueError:
        return payload[:200].decode("utf-8", "replace").strip() or "(empty body)"
    message: Any = data
    if isinstance(data, dict):
        err = data.get("error")
        message = err.get("message") if isinstance(err, dict) else err or data.get("message")
        message = message or data.get("detail") or data
    return str(message)[:300]


def model_ids(payload: bytes) -> list[str]:
    try:
        return [str(m["id"]) for m in json.loads(payload)["data"]]
    except (ValueError, KeyError, TypeError):
        return []


def as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts: [{"type": "text", "text": ...}]
        return "".join(p.get("text", "") for p in value if isinstance(p, dict))
    raise TypeError(f"unexpected message field of type {type(value).__name__}")
