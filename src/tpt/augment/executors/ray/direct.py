"""`tpt augment --executor ray` with the driver out of the data path: workers read, generate, write and
commit their own shards; the driver keeps the bookkeeping only.

The driver: takes the output lock, binds the output directory to the config (the same manifest as a local
run), asks the workers to index the input files (item counts and sparse byte offsets: ranges.py), and
sends each shard not yet committed as a unit that names its input segments (O(1) numbers per unit).
A worker, for one unit: takes that shard's own lock (commit.shard_lock: a worker Ray thinks dead but that
still runs cannot write beside the one that redoes its unit), settles a commit a crash interrupted,
skips a shard already committed whole (a resent unit, a restarted driver), reopens one that ended early,
repairs and continues a partial one (its own, or one a local run left), reads its segments, generates,
appends each outcome and commits the shard: the very files and steps of a local run (augment/shards.py).
It answers with counts and the sampling sets its records went out with; no document crosses to the driver.

What differs from a local run: an id repeated in two different shards is not marked (`duplicate_of`)
or dropped, since no process sees every id (within a shard it is, as locally); the summary says how many
such repeats the shards' sidecars show is not computed either. --fail-fast holds failures per unit.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from tpt.augment.config import AugmentConfig
from tpt.augment.executors.ray import commit
from tpt.augment.executors.ray.ranges import Segment, plan_segments, read_segment
from tpt.augment.executors.ray.units import Unit
from tpt.augment.failfast import FailFast
from tpt.augment.generation import Document, Job, to_document
from tpt.core.duplicate_ids import IdRegistry, id_hash
from tpt.core.errors import InputError
from tpt.formats.records import Failure

LOCK_WAIT_S = 120.0
"""How long a worker waits for a shard's lock that another writer holds (a zombie of its unit)."""


class RangeUnit(Unit):
    """A unit that names its input (segments) instead of carrying its documents."""

    method = "run_range"

    def __init__(self, shard: int, segments: list[Segment], items: int) -> None:
        super().__init__(shard, [])
        self.segments = segments
        self.items = items

    @property
    def payload(self) -> Any:
        return (self.segments, self.items)

    @property
    def size(self) -> int:
        return self.items


def plan_units(cfg: AugmentConfig, files: list[str], index: list[tuple[int, list]]) -> tuple[int, Iterator]:
    """(input items, the units of the shards not committed whole), from the workers' file index."""
    counts = [n for n, _ in index]
    marks = [m for _, m in index]
    total = sum(counts) if cfg.limit is None else min(sum(counts), cfg.limit)
    size = cfg.shard_size

    # Every shard goes out, committed ones too: only its sidecar says whether it ended early (an earlier
    # --limit, a corpus that grew), and the worker reads it, not the driver (it lists every first id).
    def units() -> Iterator[RangeUnit]:
        for k in range((total + size - 1) // size):
            start, end = k * size, min(total, (k + 1) * size)
            yield RangeUnit(k, plan_segments(files, counts, marks, start, end), end - start)

    return total, units()


def run_range(job: Job, backend: Any, shard: int, segments: list[Segment], items: int) -> dict[str, object]:
    """One unit on a worker: shard `shard`'s `items` input items, generated and committed exactly once."""
    cfg = job.cfg
    shards_dir = cfg.output / "shards"
    files = commit.shard_files(shards_dir)
    fmt = cfg.output_format
    with _wait_for(shards_dir, shard) as lock:
        commit.settle(files, shard, fmt)
        held = commit.committed_items(files, shard, fmt)
        if held is not None:
            if held >= items:
                lock.committed = True
                return {
                    "records": 0,
                    "failures": 0,
                    "sampling": [],
                    "refused": [],
                    "skipped": True,
                    "committed": True,
                }
            commit.reopen(files, shard, cfg.shard_size, fmt, held)
        sh = commit.open_shard(files, shard, cfg.shard_size, fmt)
        try:
            out = _fill(job, backend, sh, segments, items)
        finally:
            sh.close()
        lock.committed = out["committed"]
        return out


def _fill(job: Job, backend: Any, sh: Any, segments: list[Segment], items: int) -> dict[str, object]:
    cfg = job.cfg
    counts: dict[str, object] = {
        "records": 0,
        "failures": 0,
        "sampling": [],
        "refused": set(),
        "skipped": False,
    }
    ids = IdRegistry()
    for index, h in sh.first_ids:
        ids.add(h, index)

    def write_failure(item: Any, reason: str, detail: str, doc_id: Any = None) -> None:
        failure = Failure(
            file=item.file, line=item.line, index=item.index, id=doc_id, reason=reason, detail=detail
        )
        if sh.write(item.index, failure.to_json(), failure=True):
            counts["failures"] += 1

    fast = FailFast(cfg.fail_fast, write_failure)

    def fail(item: Any, reason: str, detail: str, doc_id: Any = None) -> None:
        if cfg.strict:
            raise InputError(f"{item.file}:{item.line}: {reason}: {detail} (--strict)")
        if reason == "generation_failed":
            fast.failed(item, reason, detail, doc_id, detail=detail)
            return
        if reason in commit.TEACHER_OUTCOMES:
            fast.succeeded()
        write_failure(item, reason, detail, doc_id)

    def documents() -> Iterator[Document]:
        for segment in segments:
            for item in read_segment(segment):
                if item.index in sh.done_indices:
                    continue
                if job.plan is not None and item.index >= job.plan.documents:
                    raise InputError(job.plan.beyond(item))
                doc = to_document(item, fail, cfg.text_field, cfg.id_field)
                if doc is None:
                    continue
                first = ids.add(id_hash(doc.id), doc.item.index)
                if first != doc.item.index:
                    if cfg.duplicate_ids == "keep-first":
                        fail(doc.item, "duplicate_id", _dropped(first), doc.id)
                        continue
                    doc.duplicate_of = first
                yield doc

    asked: dict[int, Document] = {}

    def noted(docs: Iterator[Document]) -> Iterator[Document]:
        for doc in docs:
            asked[doc.item.index] = doc
            yield doc

    outcomes = job.records(backend, noted(documents()), fail)
    try:
        for doc, record in outcomes:
            fast.succeeded()
            if sh.write(doc.item.index, record, failure=False):
                counts["records"] += 1
                sampling = record["provenance"].get("sampling")
                if sampling is not None and sampling not in counts["sampling"]:
                    counts["sampling"].append(sampling)
                counts["refused"].update(record["provenance"].get("sampling_refused") or ())
    finally:
        getattr(outcomes, "close", lambda: None)()
    fast.flush()
    for index, doc in asked.items():  # a backend must answer every request
        if index not in sh.done_indices:
            fail(doc.item, "generation_failed", "the backend returned no result for this request", doc.id)
    fast.flush()
    sh.expected = items
    counts["committed"] = sh.complete()
    if counts["committed"]:
        sh.commit()
    counts["refused"] = sorted(counts["refused"])
    return counts


def _dropped(first: int) -> str:
    return f"the id of input item {first} again; dropped (--duplicate-ids keep-first)"


class _wait_for:
    """The shard's lock, waiting up to LOCK_WAIT_S while another writer (a zombie) holds it."""

    def __init__(self, shards_dir: Any, k: int) -> None:
        self.shards_dir, self.k, self.lock = shards_dir, k, None
        self.committed = False

    def __enter__(self) -> _wait_for:
        from tpt.storage.outputlock import OutputBusyError

        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                self.lock = commit.shard_lock(self.shards_dir, self.k).__enter__()
                return self
            except OutputBusyError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def __exit__(self, *exc: object) -> None:
        if self.lock is not None:
            if self.committed:  # a later holder sees the commit first: the lock file can go
                commit.drop_shard_lock(self.shards_dir, self.k)
            self.lock.__exit__(*exc)


def run_direct(cfg: AugmentConfig, executor: Any) -> Any:
    """The driver of a run whose workers read and commit their own shards; returns the AugmentSummary."""
    from tpt.storage.outputlock import lock_output_dir

    with lock_output_dir(cfg.output, stage="augment"):
        return _drive(cfg, executor)


def _drive(cfg: AugmentConfig, executor: Any) -> Any:
    import ray

    from tpt.augment.budget import load_or_make_plan
    from tpt.augment.prompts import load_template
    from tpt.formats.corpus import resolve_inputs

    started = time.monotonic()
    paths = resolve_inputs(cfg.inputs)
    template = load_template(cfg.template)
    commit.claim(cfg, paths, template)
    plan = load_or_make_plan(cfg, paths)
    files = commit.shard_files(cfg.output / "shards")
    retried = 0
    if cfg.retry_failed:
        book = commit.light_book(
            files,
            cfg.shard_size,
            cfg.output_format,
            dict.fromkeys(commit.committed_shards(files, cfg.output_format), 0),
        )
        retried = book.forget_failures(commit.RETRYABLE)
    job = Job(cfg, template, plan)
    counts = {"new_records": 0, "new_failures": 0, "retried": retried}
    sent = commit.SamplingSent()
    try:
        executor.connect(job)
        actors = executor.actors
        names = [str(p) for p in paths]
        index = ray.get(
            [actors[i % len(actors)].index_file.remote(name, cfg.shard_size) for i, name in enumerate(names)]
        )
        total, units = plan_units(cfg, names, index)
        del index
        for _unit, out in executor.pool.map_unordered(units):
            counts["new_records"] += out["records"]
            counts["new_failures"] += out["failures"]
            for sampling in out["sampling"]:
                sent.note({"sampling": sampling, "sampling_refused": out["refused"]})
            sent.refused.update(out["refused"])
        extra, wall_s = executor.report(), time.monotonic() - started
    finally:
        executor.close()
    book = commit.light_book(files, cfg.shard_size, cfg.output_format)
    counts["input_items"] = total
    return commit.write_summary(cfg, book, counts, wall_s, extra, sent, {}, plan)
