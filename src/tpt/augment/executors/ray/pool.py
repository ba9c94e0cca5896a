"""Dynamic scheduling of units over worker actors: each worker gets the next unit as soon as it has room,
and a unit whose worker died goes to the front of the queue for the next free worker.

A result is accepted only from the call the unit was last sent on (a Ray future resolves once), so a
unit is written at most once per success; together with the driver's shard book that makes each
document's outcome exactly once, while compute is at least once (a dead worker's unit is redone).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from typing import Any

from tpt.augment.executors.ray.units import Outcome, Unit
from tpt.core.errors import BackendError, TptError

MAX_UNIT_ATTEMPTS = 3
"""A unit that has killed this many workers stops the run (a poison document or a broken node)."""
RECOVERY_WAIT_S = 600.0
"""With work left and every worker dead or restarting, how long to wait for one to come back (a lost
node's actors restart only where there is room) before the run stops; committed shards are kept."""


class WorkerPool:
    """`for unit, outcomes in WorkerPool(actors, ...).map_unordered(units)`; one pass per instance."""

    def __init__(
        self, actors: list[Any], *, units_per_worker: int, max_unit_attempts: int = MAX_UNIT_ATTEMPTS
    ):
        self.actors = actors
        # One unit more than the worker runs at once: it waits in the actor, so no worker idles while
        # the driver reads the next shard.
        self.capacity = units_per_worker + 1
        self.max_unit_attempts = max_unit_attempts
        self.worker_deaths = 0
        self.units_resent = 0
        self.documents_resent = 0
        self.dead_workers: set[int] = set()
        """Workers that died at least once (their node lost, killed, out of memory)."""
        self._free = dict.fromkeys(range(len(actors)), self.capacity)
        self._alive = set(self._free)
        self._recovering: set[int] = set()
        self._pending: dict[Any, tuple[str, int, Unit | None]] = {}  # ref -> (unit | recover, worker, unit)
        self._retry: deque[Unit] = deque()
        self._units: Iterator[Unit] = iter(())
        self._exhausted = False

    def map_unordered(self, units: Iterator[Unit]) -> Iterator[tuple[Unit, list[Outcome]]]:
        """(unit, outcomes) for every unit, in completion order."""
        import ray
        from ray.exceptions import RayActorError, RayTaskError

        self._units = units
        while True:
            self._fill()
            if not any(kind == "unit" for kind, _, _ in self._pending.values()):
                if not self._retry and self._exhausted:
                    return  # done: a worker still restarting (its node gone, no room elsewhere) is not awaited
                if not self._pending:  # work left, nobody to do it
                    raise BackendError("every Ray worker is dead; re-run the same command to resume")
                # Work left and only restarts pending: wait for a worker to come back, not forever.
                ready, _ = ray.wait(list(self._pending), num_returns=1, timeout=RECOVERY_WAIT_S)
                if not ready:
                    raise BackendError(
                        f"no Ray worker came back within {RECOVERY_WAIT_S:g} s after the others died (lost "
                        "nodes? restarts waiting for room); committed shards are kept: re-run the same command "
                        "to resume"
                    )
            [ref], _ = ray.wait(list(self._pending), num_returns=1)
            kind, i, unit = self._pending.pop(ref)
            try:
                value = ray.get(ref)
            except RayActorError as exc:
                self._on_death(kind, i, unit, exc)
                continue
            except RayTaskError as exc:  # the worker raised: a TptError carries the message to show
                cause = exc.cause if isinstance(exc.cause, BaseException) else exc
                if isinstance(cause, TptError):
                    raise cause from None
                raise
            if kind == "recover":
                self._on_recovered(i, value)
                continue
            self._free[i] += 1
            assert unit is not None
            yield unit, value

    def alive_workers(self) -> set[int]:
        """Workers that are up now (not dead for good, not waiting for a restart)."""
        return self._alive - self._recovering

    def _next_unit(self) -> Unit | None:
        if self._retry:
            return self._retry.popleft()
        if self._exhausted:
            return None
        unit = next(self._units, None)
        self._exhausted = unit is None
        return unit

    def _fill(self) -> None:
        """Send units to every live worker with room (lowest index first: deterministic in tests)."""
        for i in sorted(self._alive - self._recovering):
            while self._free[i] > 0 and (unit := self._next_unit()) is not None:
                call = getattr(self.actors[i], unit.method)
                self._pending[call.remote(unit.shard, unit.payload)] = ("unit", i, unit)
                self._free[i] -= 1

    def _on_death(self, kind: str, i: int, unit: Unit | None, exc: BaseException) -> None:
        if kind == "recover":  # restarts used up, or its node is gone
            self._alive.discard(i)
            self._recovering.discard(i)
            return
        assert unit is not None
        unit.attempts += 1
        self.units_resent += 1
        self.documents_resent += unit.size
        self.dead_workers.add(i)
        if unit.attempts >= self.max_unit_attempts:
            raise BackendError(
                f"shard {unit.shard}: {unit.attempts} workers died while holding it (last: {_first_line(exc)}); it "
                "may hold a document that crashes the engine. Committed shards are kept; fix the cause, then "
                "re-run the same command to resume"
            )
        self._retry.appendleft(unit)  # first in line: its shard commits soon
        if i not in self._recovering:
            self.worker_deaths += 1
            self._recovering.add(i)
            self._free[i] = 0
            # Wait (Ray retries the call) until the actor has been restarted and has rebuilt its backend.
            self._pending[self.actors[i].ready.options(max_task_retries=-1).remote()] = ("recover", i, None)

    def _on_recovered(self, i: int, ready: dict[str, Any]) -> None:
        self._recovering.discard(i)
        if ready.get("error"):
            self._alive.discard(i)  # its backend no longer builds after the restart
            return
        self._free[i] = self.capacity - sum(1 for _, j, _ in self._pending.values() if j == i)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
