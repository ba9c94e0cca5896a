"""Scheduling for the openai backend: requests pulled lazily from the caller's thread, at most
`concurrency` in flight on the event loop's thread, results handed back through a queue."""

from __future__ import annotations

import asyncio
import json
import queue
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from tpt.augment.backends.base import GenerationRequest, GenerationResult
from tpt.augment.backends.openai_protocol import OPEN_THINK_PREFILL
from tpt.core.errors import BackendError
from tpt.core.jsontypes import JSONObject

Send = Callable[[GenerationRequest, bytes], Awaitable[GenerationResult]]
"""send(request, body): one request through its retries (the backend's); an error is a result."""


class Feeder:
    """The caller's side: pulls requests from the iterator and hands them to the loop in chunks."""

    def __init__(
        self,
        source: Iterator[GenerationRequest],
        run: Run,
        loop: asyncio.AbstractEventLoop,
        concurrency: int,
    ) -> None:
        self.source, self.run, self.loop = source, run, loop
        self.cap = 2 * concurrency  # requests held between the iterator and the consumer
        self.chunk = max(1, min(32, concurrency // 8))  # one cross-thread wakeup per chunk
        self.outstanding = 0
        self.exhausted = False

    def wants_more(self) -> bool:
        return not self.exhausted and self.cap - self.outstanding >= self.chunk

    def top_up(self) -> None:
        if not self.wants_more():
            return
        batch: list[GenerationRequest] = []
        while self.outstanding + len(batch) < self.cap:
            request = next(self.source, None)
            if request is None:
                self.exhausted = True
                break
            batch.append(request)
            if len(batch) >= self.chunk:  # the first requests go out before the fill ends
                self._send(batch)
                batch = []
        if batch:
            self._send(batch)

    def _send(self, batch: list[GenerationRequest]) -> None:
        self.loop.call_soon_threadsafe(self.run.submit, batch)
        self.outstanding += len(batch)


class Run:
    """One generate() call inside the loop thread: the pending requests, the tasks, the results.

    Each request's body is `template` (the fields every request of the run shares) with its messages
    (an open `<think>` turn appended with `open_think`) and seed (`default_seed` when it has none)."""

    def __init__(
        self,
        send: Send,
        template: JSONObject,
        *,
        concurrency: int,
        open_think: bool,
        default_seed: int | None,
    ) -> None:
        self.send, self.template = send, template
        self.concurrency, self.open_think, self.default_seed = concurrency, open_think, default_seed
        self.results: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.pending: deque[GenerationRequest] = deque()
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    def submit(self, batch: list[GenerationRequest]) -> None:
        self.pending.extend(batch)
        self._launch()

    def _launch(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending and len(self.tasks) < self.concurrency and not self.closed:
            task = loop.create_task(self._one(self.pending.popleft()))
            self.tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.closed = True  # a whole-run problem: hand it to the consumer, start nothing new
            self.results.put(exc if isinstance(exc, BackendError) else BackendError(repr(exc)))
        self._launch()

    async def _one(self, request: GenerationRequest) -> None:
        body = dict(self.template)
        messages = list(request.messages)
        if self.open_think:
            messages.append({"role": "assistant", "content": OPEN_THINK_PREFILL})
        body["messages"] = messages
        seed = request.seed if request.seed is not None else self.default_seed
        if seed is not None:
            body["seed"] = seed
        if request.max_tokens is not None:  # this document's cap under a --thinking-budget plan
            body["max_tokens"] = min(request.max_tokens, body.get("max_tokens", request.max_tokens))
        result = await self.send(request, json.dumps(body).encode())
        self.results.put(result)

    async def cancel(self) -> None:
        self.closed = True
        self.pending.clear()
        tasks = list(self.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
