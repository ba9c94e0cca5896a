"""The text rules every reader of JSONL in tpt follows: text is taken exactly as written or not at all.

A line that is not valid UTF-8 is named (`utf8_detail`: the offending bytes and their offset), nothing is
replaced; a parsed value holding a lone surrogate, which is no Unicode text, is named (`unencodable`).
"""

from __future__ import annotations

import re
from typing import Any

# A \uD800-\uDFFF escape: only a line that holds one can parse to a lone surrogate (then it is checked).
SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def unencodable(value: Any, path: str = "") -> str | None:
    """Where a parsed JSON value holds a string that UTF-8 cannot encode (a lone surrogate), or None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"field {path or '(value)'!r} (character {exc.start})"
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            if (where := unencodable(k, f"{path}.{k!s}".lstrip(".") + " (a key)")) or (
                where := unencodable(v, f"{path}.{k!s}".lstrip("."))
            ):
                return where
    elif isinstance(value, list):
        for i, v in enumerate(value):
            if where := unencodable(v, f"{path}[{i}]"):
                return where
    return None


def utf8_detail(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.end]
        return (
            f"not valid UTF-8 at byte offset {exc.start} of the line ({bad.hex(' ')}: {exc.reason}); tpt takes text as written "
            "and replaces nothing; re-encode the file as UTF-8 (e.g. iconv -f <its encoding> -t utf-8)"
        )
    return "not valid UTF-8"
