"""`tpt validate --executor ray`: the units (input files) judged and committed by Ray workers.

The driver keeps the books only: it sends each worker a unit's number and path and gets counts back; no
document passes through it. Two passes, so that every unit is judged once with the whole run's view of
duplicate ids, exactly as a local run judges it:

1. index: each uncommitted unit, on a worker, is read for its record count and ids (units.py,
   `NNNNN.index.npz`);
2. repeats: one worker task reads the index files (and the ids of units committed earlier), numbers
   every record by its input position (units in order), and returns, per unit, the positions whose id
   came before and where it came first (rare: a few numbers per repeat);
3. judge: each uncommitted unit, on a worker, is judged with those repeats and committed (units.py);
4. merge: one worker task concatenates the units' files into kept.jsonl and rejected.jsonl (a kernel
   copy), and, once the driver has written summary.json, another removes the parts. The driver moves no
   record bytes (`RaySession`).

Units go to the workers in batches (UNITS_PER_TASK) so that the driver's cost per unit stays small.

Each pass is idempotent and a worker's files are its own until it renames them, so Ray may run a task
again after its worker or node died (`max_retries`): output is exactly once, work at least once. The
merged kept.jsonl, rejected.jsonl and summary.json are byte for byte a local run's, and a run started on
one executor resumes on the other (the committed parts are the same files). The driver's memory is O(units
+ repeats); the repeats task holds 16 bytes per id, as a local run does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tpt.core.duplicate_ids import DuplicateCheck, id_hash
from tpt.core.jsontypes import JSONObject
from tpt.core.raycluster import connect
from tpt.formats.reading import BadLine, read_records
from tpt.quality.checks import CheckConfig, Validator
from tpt.validate.config import RaySettings
from tpt.validate.judging import judge_unit
from tpt.validate.units import UnitBook, writer_token

TASK_RETRIES = 5
"""Ray re-runs of a task whose worker or node died."""
UNITS_PER_TASK = 16
"""At most this many units in one Ray task: each task costs the driver its submission and collection
(~0.4 ms, measured at 10^6 records: docs/scale.md), a cost per unit however large the run; a batch
divides it. Every unit in a batch is committed on its own, so a re-run batch redoes only its
uncommitted units."""
BATCHES_PER_WORKER = 4
"""Batches are made small enough that each worker gets at least this many (the last ones balance)."""


class RaySession:
    """The cluster a `tpt validate --executor ray` run uses from its first unit to its last file: the
    units are judged there (`judge`), and the merge and the removal of the parts run there too (`run`),
    so that the driver moves no record bytes (at 10^8 documents ~400 GB; on a shared filesystem a copy
    the driver made would cross its network)."""

    def __init__(self, opts: RaySettings) -> None:
        self.opts = opts
        self.started = False

    def __enter__(self) -> RaySession:
        import ray

        self.ray = ray
        self.started = _connect(ray, self.opts)
        self.remote = ray.remote(
            num_cpus=self.opts.worker_cpus, max_retries=TASK_RETRIES, retry_exceptions=False
        )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.started:
            self.ray.shutdown()

    def run(self, fn: Any, *args: Any) -> Any:
        """`fn(*args)` as one task on a worker (fn idempotent: Ray may run it again)."""
        return self.ray.get(self.remote(fn).remote(*args))

    def judge(
        self, book: UnitBook, files: Sequence[Path], checks: CheckConfig, policy: str
    ) -> list[JSONObject]:
        """The facts of every unit, in unit order; the uncommitted ones judged and committed on Ray."""
        ray, remote, opts = self.ray, self.remote, self.opts
        facts: dict[int, JSONObject] = {}
        for unit in range(len(files)):
            if (done := book.committed(unit)) is not None:
                facts[unit] = done
        todo = [u for u in range(len(files)) if u not in facts]
        _run_window(ray, remote, _index_task, [(str(book.dir), u, str(files[u])) for u in todo], opts)
        repeats_ref = remote(_repeats_task).remote(str(book.dir), len(files), policy)
        starts, repeats = ray.get(repeats_ref)
        jobs = [
            (str(book.dir), u, str(files[u]), starts[u], repeats.get(u, {}), checks, policy) for u in todo
        ]
        for unit, done in zip(todo, _run_window(ray, remote, _judge_task, jobs, opts), strict=True):
            facts[unit] = done
        return [facts[u] for u in range(len(files))]


def _connect(ray: Any, opts: RaySettings) -> bool:
    """Join the cluster, or start one on 127.0.0.1 only; True when this call connected."""
    return connect(ray, opts.address, stage="validate")


def _run_window(
    ray: Any, remote: Any, fn: Any, jobs: Sequence[tuple[Any, ...]], opts: RaySettings
) -> list[Any]:
    """`fn(*job)` for each job, in order: jobs go in batches (UNITS_PER_TASK), at most --workers (default:
    the cluster's CPUs) batches running at once."""
    window = opts.workers or max(1, int(ray.cluster_resources().get("CPU", 1) // max(opts.worker_cpus, 0.01)))
    size = max(1, min(UNITS_PER_TASK, len(jobs) // (BATCHES_PER_WORKER * window)))
    task = remote(_units_task)
    refs: list[Any] = []
    pending: list[Any] = []
    for i in range(0, len(jobs), size):
        if len(pending) >= window:
            _, pending = ray.wait(pending, num_returns=1)
        ref = task.remote(fn, jobs[i : i + size])
        refs.append(ref)
        pending.append(ref)
    return [out for batch in ray.get(refs) for out in batch]


def _units_task(fn: Any, jobs: Sequence[tuple[Any, ...]]) -> list[Any]:
    """One Ray task: `fn` on each unit of a batch, in order."""
    return [fn(*job) for job in jobs]


def _index_task(book_dir: str, unit: int, path: str) -> int:
    """Pass 1, on a worker: the unit's record count and ids (hash, position in the unit) -> index file."""
    book = UnitBook.reopen(Path(book_dir), writer_token())
    if book.committed(unit) is not None or book.path(unit, "index").is_file():
        return unit
    records, ids = 0, []
    for item in read_records([Path(path)]):
        if not isinstance(item, BadLine) and item.id is not None:
            ids.append((id_hash(item.id), records))
        records += 1
    book.write_index(unit, records, np.asarray(ids, dtype=np.int64).reshape(-1, 2))
    return unit


def _repeats_task(book_dir: str, units: int, policy: str) -> tuple[list[int], dict[int, dict[int, int]]]:
    """Pass 2, on a worker: each unit's first input position, and per uncommitted unit
    {position: first position of its id} for every record whose id came before (the local rule)."""
    book = UnitBook.reopen(Path(book_dir), writer_token())
    starts, hashes, positions, owner = [], [], [], []
    start = 0
    for unit in range(units):
        starts.append(start)
        facts = book.committed(unit)
        if facts is not None:  # its ids are stored with their input positions
            rows, count = book.ids(unit), int(facts["records"])
        else:
            count, rows = book.index(unit)  # positions within the unit
            rows = rows + np.array([0, start], dtype=np.int64)
        hashes.append(rows[:, 0])
        positions.append(rows[:, 1])
        owner.append(np.full(len(rows), -1 if facts is not None else unit, dtype=np.int64))
        start += count
    h, p, o = (np.concatenate(a) if a else np.zeros(0, np.int64) for a in (hashes, positions, owner))
    _, first, inverse = np.unique(h, return_index=True, return_inverse=True)  # first: earliest (read order)
    firsts = p[first][inverse]
    repeats: dict[int, dict[int, int]] = {}
    for i in np.flatnonzero((firsts != p) & (o >= 0)).tolist():
        repeats.setdefault(int(o[i]), {})[int(p[i])] = int(firsts[i])
    return starts, repeats


class KnownRepeats(DuplicateCheck):
    """DuplicateCheck for one unit whose repeats are known (pass 2): the same details and counts."""

    def __init__(self, policy: str, firsts: dict[int, int]) -> None:
        super().__init__(policy)
        self.firsts = firsts

    def check(self, doc_id: Any, position: int) -> str | None:
        first = self.firsts.get(position)
        if doc_id is None or first is None:
            return None
        probe = DuplicateCheck(self.policy)  # the local rule's own wording
        probe.ids.add(id_hash(doc_id), first)
        self.count += 1
        return probe.check(doc_id, position)


_VALIDATORS: dict[CheckConfig, Validator] = {}
"""One Validator per check config in a worker process (the contamination index is loaded once)."""


def _judge_task(
    book_dir: str,
    unit: int,
    path: str,
    start: int,
    firsts: dict[int, int],
    checks: CheckConfig,
    policy: str,
) -> JSONObject:
    """Pass 3, on a worker: judge the unit (records start, start + 1, ...) and commit it."""
    book = UnitBook.reopen(Path(book_dir), writer_token())
    if (done := book.committed(unit)) is not None:  # a re-run task whose first run had committed
        return done
    if checks not in _VALIDATORS:
        _VALIDATORS[checks] = Validator(checks)
    return judge_unit(book, unit, Path(path), start, _VALIDATORS[checks], KnownRepeats(policy, firsts))
