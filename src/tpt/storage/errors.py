"""Storage failures as one line: access denied, no credentials, an unreachable endpoint, a missing bucket.

`remote_errors(url, doing)` wraps a storage library call; a missing object stays FileNotFoundError (as
pathlib raises it), anything else becomes a StorageError naming the URL (without user-info), what was
being done and what to check. Secret-looking environment values are never part of the line (`scrub`).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
from collections.abc import Iterator

from tpt.core.errors import TptError
from tpt.storage.urls import redact

CREDENTIAL_HINT = {
    "s3": "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws/credentials "
    "(and AWS_ENDPOINT_URL for an S3-compatible store)",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS or `gcloud auth application-default login`",
    "hf": "HF_TOKEN or `huggingface-cli login`",
}


class StorageError(TptError):
    """An object store refused or failed a request; the message says which URL and what to check."""


_SECRET_NAMES = re.compile(r"SECRET|TOKEN|PASSWORD|CREDENTIAL|_KEY$|ACCESS_KEY", re.IGNORECASE)


def scrub(text: str) -> str:
    """`text` with the value of every secret-looking environment variable replaced by ***: a library's
    error message must not carry a credential into a log."""
    for name, value in os.environ.items():
        if len(value) >= 8 and _SECRET_NAMES.search(name) and value in text:
            text = text.replace(value, "***")
    return text


def _scheme(url: str) -> str:
    s = url.split("://", 1)[0].lower()
    return {"s3a": "s3", "gcs": "gs"}.get(s, s)


def explain(exc: BaseException, url: str, doing: str) -> str:
    """One line for a storage library's exception while `doing` something with `url`."""
    where = redact(url)
    hint = CREDENTIAL_HINT.get(_scheme(url), "the filesystem library's usual environment and config")
    name = type(exc).__name__
    detail = scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else name)
    if isinstance(exc, PermissionError):
        return (
            f"{where}: access denied while {doing} ({detail}): wrong credentials or no permission; "
            f"tpt uses the credentials of {hint}: check them"
        )
    if name in ("NoCredentialsError", "PartialCredentialsError", "DefaultCredentialsError"):
        return f"{where}: no credentials found while {doing}: set {hint}"
    if name in (
        "EndpointConnectionError",
        "ClientConnectorError",
        "ConnectTimeoutError",
        "ConnectionError",
    ) or (isinstance(exc, OSError) and "connect" in detail.lower()):
        return f"{where}: cannot reach the storage endpoint while {doing} ({detail}); check AWS_ENDPOINT_URL / the network"
    if isinstance(exc, FileNotFoundError):
        return f"{where}: not found while {doing} ({detail}): check the bucket and the path"
    return f"{where}: storage error while {doing}: {name}: {detail}"


@contextlib.contextmanager
def remote_errors(url: str, doing: str) -> Iterator[None]:
    """Turn a storage library's exception (any OSError, botocore's) into a StorageError line."""
    try:
        yield
    except TptError:
        raise
    except FileNotFoundError:
        # as pathlib says it, so that callers that handle a missing file handle a missing object too
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), redact(url)) from None
    except (OSError, ValueError) as exc:
        raise StorageError(explain(exc, url, doing)) from None
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in (
            "botocore",
            "aiobotocore",
            "aiohttp",
            "google",
            "huggingface_hub",
        ):
            raise StorageError(explain(exc, url, doing)) from None
        raise
