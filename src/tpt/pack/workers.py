"""Validation and tokenization of record batches in worker processes, results back in input order.

The main process reads records, decides each record's samples (a pure function of its position,
see mixing.py) and packs; the CPU-heavy part of a batch, the trajectory checks and the tokenizer,
runs in `workers` processes, one per core by default. Each worker keeps its own piece cache
(pieces.py), which warms over the run. A worker gets records without their raw line, and sends back
verdicts and one array of token ids per batch.

With `workers=0` the same work runs in the calling process (debugging, tiny inputs).
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from tpt.core.errors import TptError
from tpt.formats.reading import BadLine, RecordLine
from tpt.pack.pieces import PieceEncoder
from tpt.pack.samples import EncodedTexts, encode_texts
from tpt.pack.template import prepare_document, prepare_thinking
from tpt.quality.checks import Validator, Verdict


@dataclass(frozen=True, slots=True)
class Job:
    """A batch of records and, per record, which samples it becomes (one flag per copy: raw?)."""

    records: Sequence[RecordLine]
    flags: Sequence[tuple[bool, ...]]
    ordinals: Sequence[int] = ()
    """Each record's position in the input (its document's identity for --control shuffled)."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """What a worker returns for a Job."""

    verdicts: list[Verdict | None]
    """Per record: why the checks reject it (or flag it: `drop` False, kept), None when they pass (all
    None without validation)."""
    texts: list[tuple[int, int, int]]
    """Per kept record with samples and the thinking they need: (record, document, thinking) text
    indices into `encoded` (thinking -1 when every copy is raw, or the Preparer encodes no thinking;
    document -1 when it encodes no documents)."""
    missing_thinking: list[int]
    """Records that need thinking and have none (only reachable without validation)."""
    encoded: EncodedTexts


def batches(
    items: Iterable[RecordLine | BadLine], size: int, chars: int, *, start: int = 0
) -> Iterator[list[tuple[int, Any]]]:
    """(position in the input, item) in batches of at most `size` items and about `chars` characters;
    the first item is at position `start` (a resumed run's first unread item)."""
    batch: list[tuple[int, Any]] = []
    held = 0
    for position, item in enumerate(items, start):
        batch.append((position, item))
        if isinstance(item, RecordLine):
            held += len(item.text) + len(item.thinking or "")
        if len(batch) >= size or held >= chars:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


class Preparer:
    """Validates a Job's records and tokenizes the texts its samples need.

    `documents=False` or `thinking=False` leaves those texts out (the two passes of --control shuffled
    need one each); the verdicts are the same."""

    def __init__(
        self,
        tokenizer: Any,
        validator: Validator | None,
        pieces: PieceEncoder | None,
        *,
        documents: bool = True,
        thinking: bool = True,
    ) -> None:
        self.tokenizer = tokenizer
        self.validator = validator
        self.pieces = pieces
        self.documents = documents
        self.thinking = thinking

    def __call__(self, job: Job) -> Prepared:
        verdicts: list[Verdict | None] = (
            self.validator.judge(job.records) if self.validator else [None] * len(job.records)
        )
        texts: list[str] = []
        planned: list[tuple[int, int, int]] = []
        missing: list[int] = []
        for k, (record, flags, verdict) in enumerate(zip(job.records, job.flags, verdicts, strict=True)):
            if (verdict is not None and verdict.drop) or not flags:
                continue
            needs_thinking = not all(flags)
            if needs_thinking and record.thinking is None:
                missing.append(k)
                continue
            document = -1
            if self.documents:
                document = len(texts)
                texts.append(prepare_document(record.text))
            thinking = -1
            if needs_thinking and self.thinking:
                thinking = len(texts)
                texts.append(prepare_thinking(record.thinking or ""))
            planned.append((k, document, thinking))
        if self.pieces is not None:
            encoded = EncodedTexts(*self.pieces.encode(texts))
        else:
            encoded = encode_texts(self.tokenizer, texts)
        return Prepared(verdicts, planned, missing, encoded)


_PREPARER: Preparer | None = None


def _init_worker(preparer: Preparer, parent: int) -> None:
    global _PREPARER
    _PREPARER = preparer
    # One process per core already: the tokenizer's own thread pool would only oversubscribe.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ["RAYON_NUM_THREADS"] = "1"
    # If `tpt pack` is killed (kill -9, OOM), nothing tells the pool's workers: each holds the other
    # workers' ends of the job queue open, so none sees it close. Leave when the parent is gone.
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def _exit_with_parent(parent: int, every_s: float = 0.5) -> None:
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(1)


def _prepare(job: Job) -> Prepared:
    assert _PREPARER is not None, "worker not initialised"
    return _PREPARER(job)


def default_workers() -> int:
    """One worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class WorkerPool:
    """Runs a Preparer over Jobs in worker processes, `2 * workers` jobs ahead, results in order."""

    def __init__(self, preparer: Preparer, workers: int, start_method: str | None = None) -> None:
        self._preparer = preparer
        self._pending: deque[tuple[Future[Prepared], Job]] = deque()
        self._pool: ProcessPoolExecutor | None = None
        self._depth = 2 * workers
        if workers > 0:
            # fork where there is one (no re-import, the preparer is inherited); spawn pickles it.
            methods = multiprocessing.get_all_start_methods()
            method = start_method or ("fork" if "fork" in methods else "spawn")
            context = multiprocessing.get_context(method)
            self._pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=context,
                initializer=_init_worker,
                initargs=(preparer, os.getpid()),
            )
            # Start the workers now, telling the tokenizer library that the fork is deliberate: it
            # would otherwise warn when this process had used its thread pool before.
            saved = os.environ.get("TOKENIZERS_PARALLELISM")
            os.environ["TOKENIZERS_PARALLELISM"] = "false"
            try:
                self._pool.submit(int).result()
            finally:
                if saved is None:
                    del os.environ["TOKENIZERS_PARALLELISM"]
                else:
                    os.environ["TOKENIZERS_PARALLELISM"] = saved

    def submit(self, job: Job) -> Iterator[tuple[Job, Prepared]]:
        """Queue a job; yield the jobs that are done beyond the allowed depth, in order."""
        if self._pool is None:
            yield job, self._preparer(job)
            return
        self._pending.append((self._pool.submit(_prepare, job), job))
        while len(self._pending) > self._depth:
            yield self._next()

    def drain(self) -> Iterator[tuple[Job, Prepared]]:
        while self._pending:
            yield self._next()

    def _next(self) -> tuple[Job, Prepared]:
        future, done = self._pending.popleft()
        try:
            return done, future.result()
        except BrokenProcessPool:
            raise TptError(
                "a tpt pack worker process died (killed, or out of memory?); nothing was written "
                "as finished: re-run the same command (--workers 0 runs in one process)"
            ) from None

    def close(self) -> None:
        for future, _ in self._pending:
            future.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
