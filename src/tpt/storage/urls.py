"""What a path argument is, from its text alone: a URL's scheme, remote or local, shown without secrets.

A leaf module (it imports nothing of tpt), so that every other module may ask `is_remote`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@")
_COLLAPSED = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):/[^/]")


def scheme(spec: str | os.PathLike) -> str | None:
    """The URL scheme of a path argument (`s3`, `file`, ...), or None for a plain path."""
    m = _SCHEME.match(os.fspath(spec)) if not isinstance(spec, Path) else None
    return m.group(1).lower() if m else None


def is_remote(spec: object) -> bool:
    """True for a RemotePath or a URL that is not file://."""
    if getattr(spec, "is_remote_path", False):
        return True
    if isinstance(spec, str | os.PathLike):
        s = scheme(spec)
        return s is not None and s not in ("file", "local")
    return False


def redact(text: str) -> str:
    """A URL without its user-info part (`s3://KEY:SECRET@bkt/x` -> `s3://bkt/x`)."""
    return _USERINFO.sub(r"\1", text)


def check_local(path: str | os.PathLike) -> None:
    """Refuse a local path that is a URL whose `//` was collapsed by pathlib (`Path("s3://b/x")` is
    `s3:/b/x`): writing there would make a directory named `s3:` instead of writing to the bucket."""
    text = os.fspath(path)
    if _COLLAPSED.match(text) and scheme(text.replace(":/", "://", 1)) not in (None, "file"):
        from tpt.core.errors import ConfigError

        raise ConfigError(
            f"{text} looks like a URL that lost its '//' (it was made a local path): pass the URL as a "
            "string, or through tpt.storage.as_path, not through pathlib.Path"
        )
