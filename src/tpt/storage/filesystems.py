"""The fsspec filesystem of a URL, with a one-line error for a missing library or an unknown scheme.

Credentials are the library's business: tpt passes none and records none. s3fs reads AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE and ~/.aws; an S3-compatible store's endpoint comes
from AWS_ENDPOINT_URL (or fsspec's own config: FSSPEC_S3_ENDPOINT_URL, ~/.config/fsspec/*.json). gcsfs
reads GOOGLE_APPLICATION_CREDENTIALS or gcloud's login; the Hub's filesystem reads HF_TOKEN or
`huggingface-cli login`.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from tpt.core.errors import InputError, MissingDependencyError

# scheme -> (the package that implements it, the tpt extra that installs it)
LIBRARIES: dict[str, tuple[str, str]] = {
    "s3": ("s3fs", "s3"),
    "s3a": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"),
    "gcs": ("gcsfs", "gcs"),
    "hf": ("huggingface_hub", "hf"),
}

_LOCK = threading.Lock()
# No listing cache: another process (a resumed run, a Ray worker) writes the same prefix, and a stale
# listing would hide its commits.
_OPTIONS: dict[str, dict[str, Any]] = {
    "s3": {"use_listings_cache": False},
    "gs": {"use_listings_cache": False},
}


# The environment a filesystem library reads its credentials and endpoint from: a filesystem object is
# reused only while these are unchanged (fsspec's own instance cache keys on arguments, not on them).
_ENV_PREFIXES = ("AWS_", "GOOGLE_", "GCLOUD", "HF_", "FSSPEC_")
_FILESYSTEMS: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}


def _env_key() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)))


def filesystem(url: str) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for a URL; one filesystem object per scheme and environment."""
    scheme = url.split("://", 1)[0].lower()
    key = (scheme, _env_key())
    with _LOCK:
        fs = _FILESYSTEMS.get(key)
    if fs is not None:
        return fs, fs._strip_protocol(url)
    try:
        import fsspec.core
    except ImportError:  # pragma: no cover - fsspec comes with every extra
        extra = LIBRARIES.get(scheme, ("", "s3"))[1]
        raise MissingDependencyError("fsspec", f"reading {scheme}:// URLs", extra) from None
    try:
        with _LOCK:
            options = _OPTIONS.get({"s3a": "s3", "gcs": "gs"}.get(scheme, scheme), {})
            fs, path = fsspec.core.url_to_fs(url, skip_instance_cache=True, **options)
            _FILESYSTEMS[key] = fs
    except ImportError:
        package, extra = LIBRARIES.get(scheme, (f"the fsspec implementation of {scheme}://", None))
        raise MissingDependencyError(package, f"a {scheme}:// path ({_short(url)})", extra) from None
    except ValueError as exc:
        if "not known" in str(exc) or "protocol" in str(exc).lower():
            raise InputError(
                f"{_short(url)}: unknown URL scheme {scheme}:// (tpt reads plain paths, file://, s3://, gs://, "
                "hf:// and the other fsspec protocols)"
            ) from None
        raise InputError(f"{_short(url)}: {exc}") from None
    return fs, path


def _short(url: str) -> str:
    from tpt.storage.urls import redact

    return redact(url)
