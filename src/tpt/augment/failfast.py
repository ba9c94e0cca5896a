"""Fail fast: a teacher that fails every document stops the run after the first N, not after the corpus.

The stage hands each generation failure here before writing it. While no document of this run has
succeeded, the failures are held back (not written); the first success writes them and ends the watch.
When `limit` of them are held and none succeeded, the run stops with `ServerUnusableError` (exit status
EXIT_SERVER_UNUSABLE) and one line: the error class, a sample message and the likely fix. The held
documents stay without an outcome, so the same command re-run once the server is fixed does them.

Why N = 32 by default: each of those documents already went through the backend's retries (7 attempts
over about 25 s for the openai backend), so a document failing is not a blip. A server that answers even
1 document in 2 would fail 32 in a row by chance with probability 2^-32 (about 2e-10), so a usable
teacher is never stopped; 32 is half the openai backend's default concurrency, so the stop comes with
the first wave of requests, in the time one document's retries take, whatever the corpus size.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable

from tpt.core.errors import ServerUnusableError

DEFAULT_LIMIT = 32
"""Documents that must all fail, none succeeding, before the run stops (0: never stop)."""

_KIND = re.compile(r"^([a-z_]+):")

LIKELY_FIX: dict[str, str] = {
    "bad_response": "the server's answers are not chat completions tpt can read: run `tpt augment "
    "--check-server` with the same --base-url and --model; a server that cannot stream needs "
    "--loop-guard off",
    "connection": "the server drops connections: is it running and healthy (its log), and is "
    "--concurrency above what it accepts?",
    "timeout": "no answer within --request-timeout: raise it, or lower --concurrency or "
    "--max-thinking-tokens (a request waits in the server's queue too)",
    "server_error": "the server fails every request (HTTP 5xx): read its log; an overloaded server "
    "needs a lower --concurrency",
    "rate_limited": "the API rate-limits every request: lower --concurrency or raise the account's limit",
    "bad_request": "the server refuses the request itself: check --max-thinking-tokens plus "
    "--max-doc-tokens against its context length, and --engine-arg (`tpt augment --check-server`)",
    "content_filter": "the server's content filter stops every generation: use a teacher without one",
}
GENERIC_FIX = "the teacher fails every document the same way: read the message, fix the backend, re-run"


def error_class(detail: str) -> str:
    """'server_error: HTTP 503: ...' -> 'server_error'; a detail without a kind is its exception name."""
    if match := _KIND.match(detail):
        return match.group(1)
    head = detail.split(":", 1)[0].strip()
    return head if head.isidentifier() else "error"


class FailFast:
    """Holds back this run's first generation failures until a success or the stop (see module doc)."""

    def __init__(self, limit: int, write: Callable[..., None]) -> None:
        self.limit = limit
        self._write = write
        self._held: list[tuple] = []
        self.watching = limit > 0

    def failed(self, *failure: object, detail: str) -> None:
        """A generation failure (write's arguments): held while watching, else written now."""
        if not self.watching:
            self._write(*failure)
            return
        self._held.append((failure, detail))
        if len(self._held) >= self.limit:
            raise ServerUnusableError(self.message())

    def succeeded(self) -> None:
        """A document got its outcome from the teacher: the teacher works; write what was held."""
        if self.watching:
            self.watching = False
            self.flush()

    def flush(self) -> None:
        held, self._held = self._held, []
        for failure, _ in held:
            self._write(*failure)

    def message(self) -> str:
        classes = Counter(error_class(detail) for _, detail in self._held)
        (top, count), n = classes.most_common(1)[0], len(self._held)
        sample = next(detail for _, detail in self._held if error_class(detail) == top)
        what = top if count == n else ", ".join(f"{k} x{v}" for k, v in classes.most_common())
        fix = LIKELY_FIX.get(top, GENERIC_FIX) if count == n else GENERIC_FIX
        return (
            f"stopped: the first {n} documents all failed ({what}) and none succeeded; e.g. "
            f"{sample[:240]!r}. Likely fix: {fix}. Nothing was written for them: re-run the same "
            "command once fixed (--fail-fast 0 never stops)"
        )
