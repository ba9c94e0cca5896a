"""The text rules every reader of JSONL in tpt follows: text is taken exactly as written or not at all.

A line that is not valid UTF-8 is named (`utf8_detail`: the offending bytes and their offset), nothing is
replaced; a parsed value holding a lone surrogate, which is no Unicode text, is named (`unencodable`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from tpt.core.jsontypes import JSONObject

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


_WS = re.compile(r"[ \t\n\r]*")


def readable_id(raw: str | bytes | dict, field: str = "id") -> Any:
    """The line's `field` (its id) when it can be read although the line is no valid record, else None.

    So a failure record names the document whenever it can: a line that is not valid UTF-8 is read with
    its bad bytes set aside (they cannot be in an id that is read), a malformed line up to where it
    breaks (its top-level fields before that, in order), a line holding a lone surrogate as parsed. An id
    that itself holds a lone surrogate or a bad byte cannot be written, and is not read (None)."""
    if isinstance(raw, dict):
        value = raw.get(field)
    else:
        text = raw.decode("utf-8", "surrogateescape") if isinstance(raw, bytes) else raw
        try:
            obj = json.loads(text)
        except ValueError:
            obj = _leading_fields(text)
        value = obj.get(field) if isinstance(obj, dict) else None
    return None if value is None or unencodable(value) else value


def _leading_fields(text: str) -> JSONObject:
    """The top-level fields of a JSON object read in order until the text stops being valid JSON."""
    decoder = json.JSONDecoder()
    i = _WS.match(text).end()  # type: ignore[union-attr]
    if text[i : i + 1] != "{":
        return {}
    out: JSONObject = {}
    i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
    while text[i : i + 1] == '"':
        try:
            key, i = json.decoder.scanstring(text, i + 1)  # type: ignore[attr-defined]
        except ValueError:
            break
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        if text[i : i + 1] != ":":
            break
        try:
            value, i = decoder.raw_decode(text, _WS.match(text, i + 1).end())  # type: ignore[union-attr]
        except ValueError:
            break
        out[key] = value
        i = _WS.match(text, i).end()  # type: ignore[union-attr]
        if text[i : i + 1] != ",":
            break
        i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
    return out
