"""`tpt pack --executor ray`: Ray workers read and tokenize the input; one Ray task, the sequencer, packs.

Three roles, and where document text is:

- the driver (the `tpt` process) holds the output lock, starts the sequencer task and waits for its
  stats.json object: it never opens an input file, and its memory and network are O(1) (`pack_on_ray`);
- the sequencer (one Ray task, `_sequence`) runs stage.sequence, the same code as a local pack: it plans
  the input units (inputunits.py: byte ranges of the record files; their line and item counts come from
  `_count_task`s, O(units) numbers), sends each unit to a `_prepare_task`, and takes the results back by
  object reference, in input order, `2 * workers` units ahead; it keeps the packing sequence (duplicate
  ids, plan, shuffle, rows, shards, commits), which must be one sequence in one place. The batches it gets
  hold token ids, verdicts and each record's id, source, file and line, not its text;
- the workers (`_prepare_task`, one CPU each) read their unit from the shared input paths, cut it into
  batches, check and tokenize them (workers.Preparer; the piece cache lives as long as the worker
  process) and drop the texts.

The output directory is byte-identical to --executor local with the same options: a record's samples
depend only on its position, seed and source (mixing.py), a worker judges and tokenizes every record of
its unit the way a local worker would (the sequencer drops the keep-first duplicates afterwards), the
shuffle draws do not depend on the batches, and the log lines are written in input order. Commits are
pack's own (commits.py), so a run resumes with either executor. A worker task that dies (SIGKILL, a lost
node) is run again by Ray (TASK_RETRIES); so is the sequencer (SEQUENCER_RETRIES), which resumes from
the last commit; a driver that dies takes the sequencer with it, and the same command resumes.

With no --address and no $RAY_ADDRESS, pack starts a one-machine cluster on 127.0.0.1
(tpt.core.raycluster.connect), as augment and validate do.
"""

from __future__ import annotations

import os
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from itertools import islice
from typing import Any

import numpy as np

from tpt.core.errors import ConfigError, TptError
from tpt.core.jsontypes import JSONObject
from tpt.formats.reading import BadLine, RecordLine, parse_line
from tpt.pack.config import PackConfig
from tpt.pack.inputunits import Checkpoint, UnitSpec, count_unit, plan_units, read_unit
from tpt.pack.mixing import SamplePlanner
from tpt.pack.workers import Job, Prepared, Preparer, batches
from tpt.storage import as_path

TASK_RETRIES = 5
"""Ray re-runs of a worker task whose process or node died."""
SEQUENCER_RETRIES = 2
"""Ray re-runs of the sequencer (each resumes from the last commit)."""

Sequence_ = Callable[[PackConfig, Callable[[str], None]], JSONObject]
"""stage.sequence's signature (passed in: this module and stage.py do not import each other's way back)."""
Batch = list[tuple[int, RecordLine | BadLine]]
"""(input position, item) of a batch, as workers.batches cuts them; on the way back, without texts."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs the ray package (pip install 'ray[default]')") from None
    return ray


def pack_on_ray(config: PackConfig, sequence: Sequence_) -> tuple[JSONObject, list[str]]:
    """The driver: run `sequence` (stage.sequence) as the sequencer task on the cluster; (stats.json object,
    the run's notes)."""
    from tpt.core.raycluster import connect

    ray = _ray()
    joined = connect(ray, config.address, stage="pack")
    try:
        sequencer = ray.remote(num_cpus=0, max_retries=SEQUENCER_RETRIES, retry_exceptions=False)(_sequence)
        try:
            return ray.get(sequencer.remote(config, sequence))
        except ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, TptError):
                raise exc.cause from None
            raise
        except ray.exceptions.RayError as exc:
            raise TptError(
                f"the tpt pack sequencer failed ({type(exc).__name__}); re-run the same command: the run "
                "resumes from its last commit"
            ) from None
    finally:
        if joined:
            ray.shutdown()


def _sequence(config: PackConfig, sequence: Sequence_) -> tuple[JSONObject, list[str]]:
    """The sequencer task: stage.sequence (passed by reference), its notes kept for the driver to print."""
    notes: list[str] = []
    return sequence(config, notes.append), notes


class RayUnits:
    """In the sequencer: the input's batches from `start` on, checked and tokenized by Ray workers, in
    input order, as (batch without texts, the worker's Job without texts, its Prepared, the checkpoint
    after the batch: None in a file that cannot be entered at an offset)."""

    def __init__(
        self,
        files: Sequence[Any],
        preparer: Preparer,
        planner: SamplePlanner,
        config: PackConfig,
        start: int,
        at: Checkpoint | None = None,
    ) -> None:
        """From input position `start`, which is at checkpoint `at` when one is given (a resumed run)."""
        ray = self._ray = _ray()
        self._units = plan_units(files, config.unit_bytes, at)
        counts = ray.get(
            [_remote(ray, _count_task).remote(u) for u in self._units]
        )  # (lines, items) per unit
        self._firsts: list[tuple[int, int]] = []  # (first position, first line) per unit
        position, line = (start, at[2]) if at else (0, 1)
        for i, (unit, (lines, items)) in enumerate(zip(self._units, counts, strict=True)):
            if i and unit.file != self._units[i - 1].file:
                line = 1
            self._firsts.append((position, line))
            position, line = position + items, line + lines
        self._ends = [p + n for (p, _), (_, n) in zip(self._firsts, counts, strict=True)]
        self._holder = [ray.put(preparer)]  # in a list: a task gets the reference, not the object
        self._token = uuid.uuid4().hex
        self._args = (planner, config.batch_size, config.batch_chars, start)
        self._start = start
        workers = config.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._depth = 2 * workers

    def __iter__(self) -> Iterator[tuple[Batch, Job, Prepared, Checkpoint | None]]:
        task = _remote(self._ray, _prepare_task)
        pending: deque[Any] = deque()
        for unit, (first, line), end in zip(self._units, self._firsts, self._ends, strict=True):
            if end <= self._start:
                continue
            pending.append(task.remote(self._holder, self._token, unit, first, line, *self._args))
            while len(pending) > self._depth:
                yield from self._get(pending.popleft())
        while pending:
            yield from self._get(pending.popleft())

    def _get(self, ref: Any) -> list[tuple[Batch, Job, Prepared, Checkpoint | None]]:
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.RayTaskError as exc:
            if isinstance(exc.cause, TptError):  # the input's fault (unreadable, changed): its own line
                raise exc.cause from None
            raise
        except self._ray.exceptions.RayError as exc:
            raise TptError(
                f"a tpt pack Ray worker failed ({type(exc).__name__}) {TASK_RETRIES + 1} times; re-run the "
                "same command: the run resumes from its last commit"
            ) from None


def _remote(ray: Any, fn: Any) -> Any:
    return ray.remote(num_cpus=1, max_retries=TASK_RETRIES, retry_exceptions=False)(fn)


def _count_task(unit: UnitSpec) -> tuple[int, int]:
    return count_unit(unit)


_PREPARERS: dict[str, Preparer] = {}
"""The run's Preparer in this worker process (its piece cache warms over the tasks of the run)."""


def _preparer(holder: list[Any], token: str) -> Preparer:
    if token not in _PREPARERS:
        import ray

        # One task per CPU already: the tokenizer's own thread pool would only oversubscribe.
        os.environ["TOKENIZERS_PARALLELISM"] = "false"
        os.environ["RAYON_NUM_THREADS"] = "1"
        _PREPARERS.clear()
        _PREPARERS[token] = ray.get(holder[0])
    return _PREPARERS[token]


def _prepare_task(
    holder: list[Any],
    token: str,
    unit: UnitSpec,
    first: int,
    first_line: int,
    planner: SamplePlanner,
    size: int,
    chars: int,
    start: int,
) -> list[tuple[Batch, Job, Prepared, Checkpoint | None]]:
    """A worker: read the unit (its items are input positions first, first + 1, ...), cut it into
    batches, check and tokenize every record, and return the batches without their texts."""
    preparer = _preparer(holder, token)
    path = as_path(unit.file)
    name, source = str(path), path.name.split(".")[0]
    skip = max(0, start - first)
    lines = islice(read_unit(unit, first_line), skip, None)
    last = [(0, -1)]  # (line number, offset after it) of the last item read

    def items() -> Iterator[RecordLine | BadLine]:
        for number, raw, after in lines:
            last[0] = (number, after)
            yield parse_line(raw, name, number, source)

    out = []
    for batch in batches(items(), size, chars, start=first + skip):
        records = [(i, r) for i, r in batch if isinstance(r, RecordLine)]
        ordinals = np.fromiter((i for i, _ in records), dtype=np.int64, count=len(records))
        copies = planner.copies(ordinals, [r.source for _, r in records]).tolist()
        job = Job(
            records=[replace(r, raw=b"") for _, r in records],
            flags=[tuple(planner.raw_flags(i, n)) for (i, _), n in zip(records, copies, strict=True)],
            ordinals=[i for i, _ in records],
        )
        prepared = preparer(job)
        number, after = last[0]
        at = (unit.number, after, number + 1) if after >= 0 else None
        textless = replace(job, records=[_textless(r) for r in job.records])
        out.append(([(i, _textless(r)) for i, r in batch], textless, prepared, at))
    return out


def _textless(item: Any) -> Any:
    if isinstance(item, RecordLine):
        return replace(item, text="", thinking=None, raw=b"")
    return replace(item, raw=b"")
