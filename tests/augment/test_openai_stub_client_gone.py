"""The stub teacher when its client goes away mid-answer (a Ray worker SIGKILLed in the soak): the reset
that aiohttp raises on the next write is counted and answered, not left to aiohttp, which logged a
traceback for each (hundreds per killed worker in the scale soak's log)."""

from __future__ import annotations

import asyncio

from tpt.testing import openai_stub
from tpt.testing.openai_stub import StubConfig


def test_a_reset_connection_is_counted_not_raised(monkeypatch):
    stub = openai_stub._Stub(StubConfig())

    async def reset(self, request):
        raise ConnectionResetError("Cannot write to closing transport")

    monkeypatch.setattr(openai_stub._Stub, "_chat", reset)
    answer = asyncio.run(stub.chat(None))
    assert answer.status == 499
    assert (stub.stats.clients_gone, stub.stats.in_flight) == (1, 0)
