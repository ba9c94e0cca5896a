"""`tpt pack`: augmented records -> validated, tokenized, mixed, shuffled, packed shards and stats.json."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from tpt.core.artifacts import claim_output_dir, write_json
from tpt.core.control_tokens import text_only
from tpt.core.duplicate_ids import DuplicateCheck
from tpt.core.errors import ConfigError
from tpt.core.jsontypes import JSONObject
from tpt.core.progress import Progress
from tpt.formats.packfile import (
    PARTS as SHARD_PARTS,
)
from tpt.formats.packfile import (
    PackIndex,
    ShardEntry,
    index_json,
    part_path,
    shard_name,
    token_dtype,
)
from tpt.formats.packwriter import ShardWriter, open_path, open_shard_intact, reopen_shard
from tpt.formats.reading import BadLine, RecordLine
from tpt.formats.student import StudentTokenizer, load_student_tokenizer, save_student_tokenizer
from tpt.formats.summaries import PackSummary
from tpt.pack.bos import resolve_bos
from tpt.pack.commits import PARTS, CommitBook, JournaledIds, PackState
from tpt.pack.config import PackConfig
from tpt.pack.controls import Filler
from tpt.pack.documents import open_inputs
from tpt.pack.inputunits import Checkpoint, RecordFiles, seekable
from tpt.pack.megatron import MegatronWriter
from tpt.pack.mixing import SamplePlanner, ShuffleBuffer
from tpt.pack.packing import RowPacker, Sample
from tpt.pack.pieces import piece_encoder_for
from tpt.pack.samples import PlannedRecord, assemble
from tpt.pack.spill import TrajectorySpill
from tpt.pack.stats import PackStats
from tpt.pack.template import (
    EncodedTemplate,
    encode_template,
    parse_template,
)
from tpt.pack.workers import Job, Prepared, Preparer, WorkerPool, batches, default_workers
from tpt.quality.checks import CheckConfig, Validator
from tpt.storage import as_path
from tpt.storage.outputlock import lock_output_dir


def run(config: PackConfig, *, log: Any = print) -> PackSummary:
    """Pack config.inputs into config.output (shards, index.json, stats.json = `summary.to_json()`).

    `log` takes the stage's notes (which corpus a full text came from, unused --weights)."""
    with lock_output_dir(config.output, stage="pack"):
        if config.executor == "ray":  # the sequence runs in a Ray task; this process holds the lock
            from tpt.pack.raypool import pack_on_ray

            stats, notes = pack_on_ray(config, sequence)
            for note in notes:
                log(note)
        else:
            stats = sequence(config, log)
        return PackSummary.from_stats(config.output, stats)


# Its locals (shuffle buffer, packer, writer, stats, id set, input position) are the state each shard commit
# long: saves and a resume restores (pack/commits.py): one frame, so no part of that state can be missed
def sequence(config: PackConfig, log: Any) -> dict[str, Any]:
    """The packing sequence (plan, duplicate ids, shuffle, rows, shards, commits) over the prepared batches,
    in this process: the `tpt pack` process, or the sequencer task of --executor ray (raypool.py)."""
    started = time.monotonic()
    items, text_facts = open_inputs(config.inputs, mode=config.mode, document_text=config.text, log=log)
    student = load_student_tokenizer(config.tokenizer, eos_token=config.eos_token)
    template = encode_template(parse_template(config.template), student, resolve_bos(student, config.bos))
    # The student's special tokens count as leaked control strings in a thinking. Texts are encoded
    # as text (control.text_only): a document's `<|endoftext|>` is its characters, not the EOS token.
    # The raw arm judges the document alone: no thinking filter removes a document from it.
    checks = replace(
        config.checks,
        control_strings=config.checks.control_strings + student.special_tokens,
        thinking=config.mode != "raw",
    )
    validator = Validator(checks) if config.validate else None
    out, book, resumed = _prepare_output(config)
    raw_fraction = 1.0 if config.mode == "raw" else config.raw_fraction or 0.0
    planner = SamplePlanner(seed=config.seed, weights=config.weights, raw_fraction=raw_fraction)
    dtype = token_dtype(student.vocab_size)
    state = resumed[1] if resumed else PackState(
        items=0,
        shuffle=ShuffleBuffer(config.shuffle_buffer, config.seed),
        packer=RowPacker(config.seq_len, config.packing, student.pad_id),
        shards=ShardWriter(out, seq_len=config.seq_len, dtype=dtype,
                           rows_per_shard=config.shard_tokens // config.seq_len),
        stats=PackStats(),
        duplicate_ids=0,
    )  # fmt: skip
    commits, facts = (resumed[0], resumed[2]) if resumed else (0, {})
    stats, shuffle, packer, shards = state.stats, state.shuffle, state.packer, state.shards
    dups = DuplicateCheck(config.duplicate_ids)
    dups.ids = JournaledIds()
    book.restore_ids(commits, dups)
    dups.count = state.duplicate_ids
    megatron = (
        MegatronWriter(
            out / "megatron" / "text_document", student.vocab_size, resume=facts.get("megatron_bytes")
        )
        if config.megatron
        else None
    )

    def emit(samples: list[Sample]) -> None:
        stats.add(samples)
        if megatron:
            megatron.add(samples)
        shards.add(packer.add(samples))

    text_tokenizer = text_only(student.tokenizer)
    pieces = piece_encoder_for(text_tokenizer, config.piece_cache)
    workers = default_workers() if config.workers is None else config.workers
    spill: TrajectorySpill | None = None
    filler: Filler | None = None
    control_facts: dict[str, Any] | None = None
    if config.control == "shuffled":
        # Pass 1: the same records kept as in the TPT arm, their thinking to disk, the derangement.
        spill = TrajectorySpill(out / _SPILL, dtype)
        seed = config.seed if config.control_seed is None else config.control_seed
        plan = _trajectory_pass(config, validator, Preparer(text_tokenizer, validator, pieces, documents=False),
                                workers, spill, seed)  # fmt: skip
        if state.spill_cursor is not None:
            spill.seek(state.spill_cursor)
        control_facts = {"name": "shuffled", **plan.facts()}
    elif config.control == "filler":
        filler = Filler(text_tokenizer)
        control_facts = {"name": "filler", **filler.facts()}
    preparer = Preparer(text_tokenizer, validator, pieces, thinking=spill is None)

    progress = Progress(None, label="pack", enabled=config.progress)

    ids_since: list[tuple[int, int]] = []

    def commit() -> None:
        nonlocal commits
        _sync_shards(out, shards.shards[facts.get("shards", 0) :])
        shards.sync()
        lengths, megatron_bytes = megatron.take() if megatron else (np.empty(0, np.int32), None)
        state.spill_cursor = spill.cursor() if spill is not None else None
        facts.update(
            items=state.items,
            shards=len(shards.shards),
            open_rows=shards.open_rows,
            skipped_bytes=_synced_size(skipped_file),
            flagged_bytes=_synced_size(flagged_file),
            megatron_bytes=megatron_bytes,
            duplicate_ids=state.duplicate_ids,
        )
        ids = np.asarray(ids_since, dtype=np.int64).reshape(-1, 2)
        book.commit(commits, dict(facts), ids, lengths, state)
        commits += 1
        ids_since.clear()

    def accept(job: Job, deferred: _Deferred, prepared: Prepared) -> None:
        _apply(deferred, stats, skipped_log, flagged_log)
        state.items = deferred.end
        state.input_at = deferred.at
        state.duplicate_ids += deferred.repeats
        ids_since.extend(deferred.ids)
        planned = _accept(job, prepared, stats, skipped_log, flagged_log)
        thinking = None
        if spill is not None:
            thinking = spill.partner_thinking(
                [r.ordinal for r in planned], [r.augmented_copies for r in planned]
            )
        elif filler is not None:
            thinking = [
                [filler.ids(len(prepared.encoded[r.thinking]))] * r.augmented_copies
                if r.thinking >= 0
                else []
                for r in planned
            ]
        skipped_log.flush_batch(), flagged_log.flush_batch()
        emit(shuffle.push(assemble(planned, prepared.encoded, template, thinking)))
        rejected = sum(v is not None and v.drop for v in prepared.verdicts)
        rejected += len(prepared.missing_thinking)
        progress.update(done=len(job.records), failures=rejected, tokens=len(prepared.encoded.ids))
        if len(shards.shards) > facts.get("shards", 0):
            commit()

    try:
        with (
            _log_file(out / "skipped.jsonl", facts.get("skipped_bytes")) as skipped_file,
            _log_file(out / "flagged.jsonl", facts.get("flagged_bytes")) as flagged_file,
            closing(
                _prepared(
                    config,
                    preparer,
                    workers,
                    planner,
                    dups,
                    items,
                    text_facts,
                    state.items,
                    getattr(state, "input_at", None),
                )  # fmt: skip
            ) as prepared_batches,
        ):
            skipped_log, flagged_log = _OrderedLog(skipped_file), _OrderedLog(flagged_file)
            for done in prepared_batches:
                accept(*done)
        emit(shuffle.drain())
        shards.add(packer.finish())
        progress.close()
        if spill is not None:
            spill.finish()
    except BaseException:
        shards.abort()
        if megatron:
            megatron.abort()
        if spill is not None:
            spill.close()
        raise
    shard_list = shards.close()
    if megatron:
        megatron.close(book.megatron_lengths(commits))
    result = stats.finish(
        rows=shards.num_rows,
        seq_len=config.seq_len,
        pad_tokens=packer.pad_tokens,
        split_samples=packer.split_samples,
        kind_counts=shards.kind_counts,
    )
    unused = sorted(set(config.weights) - set(stats.by_source))
    if unused:
        log(f"tpt pack: warning: --weights names source(s) with no records: {', '.join(unused)}")
    save_student_tokenizer(student, out / "tokenizer")
    result.update(_run_facts(config, checks, student, template, time.monotonic() - started))
    result["duplicate_ids"] = {"count": dups.count, "policy": dups.policy}
    result["inputs"] = text_facts
    result["control"] = control_facts
    write_json(out / "stats.json", result)
    write_json(out / "index.json", _index(config, student, template, dtype, shard_list))
    book.remove()
    return result


_SPILL = "control-spill"


def _trajectory_pass(
    config: PackConfig,
    validator: Validator | None,
    preparer: Preparer,
    workers: int,
    spill: TrajectorySpill,
    seed: int,
) -> Any:
    """--control shuffled, pass 1: read and check the input as the pack does (same records kept, same
    samples planned), spill each kept record's thinking ids, and derange (controls.Derangement)."""
    items, facts = open_inputs(
        config.inputs, mode=config.mode, document_text=config.text, log=lambda *_: None
    )
    raw_fraction = config.raw_fraction or 0.0
    planner = SamplePlanner(seed=config.seed, weights=config.weights, raw_fraction=raw_fraction)
    stats = PackStats()
    dups = DuplicateCheck(config.duplicate_ids)
    with (
        open(os.devnull, "w", encoding="utf-8") as devnull,
        closing(
            _prepared(config, preparer, workers, planner, dups, items, facts, 0, None)
        ) as prepared_batches,
    ):
        null = _OrderedLog(devnull)
        for job, deferred, prepared in prepared_batches:
            _apply(deferred, stats, null, null)
            for rec in _accept(job, prepared, stats, null, null):
                source = stats.source_names[rec.source]
                if rec.thinking >= 0:
                    spill.add(rec.ordinal, source, prepared.encoded[rec.thinking], rec.augmented_copies)
            null.flush_batch()
    return spill.close_pass1(seed)


Prepared3 = tuple[Job, "_Deferred", Prepared]


def _prepared(
    config: PackConfig,
    preparer: Preparer,
    workers: int,
    planner: SamplePlanner,
    dups: DuplicateCheck,
    items: Iterable[RecordLine | BadLine],
    facts: Sequence[Mapping[str, Any]],
    start: int,
    at: Checkpoint | None,
) -> Iterator[Prepared3]:
    """The batches from input position `start` on (at checkpoint `at`, when the commit has one), planned
    (in order, through `dups`) and prepared: by worker processes here, or by Ray workers that read the
    input themselves (raypool.py)."""
    if config.executor == "ray":
        return _ray_prepared(config, preparer, planner, dups, facts, start, at)
    return _local_prepared(config, preparer, workers, planner, dups, items, _plain_files(facts), start, at)


def _plain_files(facts: Sequence[Mapping[str, Any]]) -> list[Path] | None:
    """The record files, when every input is record files that can be entered at a byte offset."""
    files = [as_path(f) for fact in facts for f in fact["files"]]
    plain = all(f["text"] == "records" for f in facts) and all(seekable(f) for f in files)
    return files if plain else None  # type: ignore[return-value]


def _local_prepared(
    config: PackConfig,
    preparer: Preparer,
    workers: int,
    planner: SamplePlanner,
    dups: DuplicateCheck,
    items: Iterable[RecordLine | BadLine],
    files: list[Path] | None,
    start: int,
    at: Checkpoint | None,
) -> Iterator[Prepared3]:
    """Plain record files are read by byte position (a resumed run seeks to its checkpoint, and each
    batch says where it ends); any other input is read as open_inputs gives it (a resumed run skips the
    items it had consumed)."""
    reader = RecordFiles(files, at) if files is not None else None
    stream = islice(reader, 0 if at else start, None) if reader else islice(items, start, None)
    pending: deque[_Deferred] = deque()
    with WorkerPool(preparer, workers) as pool:
        for batch in batches(stream, config.batch_size, config.batch_chars, start=start):
            job, deferred = _plan(batch, planner, dups)
            deferred.at = reader.checkpoint() if reader else None
            pending.append(deferred)
            for done, prepared in pool.submit(job):
                yield done, pending.popleft(), prepared
        for done, prepared in pool.drain():
            yield done, pending.popleft(), prepared


def _ray_prepared(
    config: PackConfig,
    preparer: Preparer,
    planner: SamplePlanner,
    dups: DuplicateCheck,
    facts: Sequence[Mapping[str, Any]],
    start: int,
    at: Checkpoint | None,
) -> Iterator[Prepared3]:
    """The Ray workers judge and tokenize every record of a batch; the repeated ids that keep-first drops
    are found here, in order, and left out of the worker's result (_subset)."""
    from tpt.pack.raypool import RayUnits

    if any(f["text"] != "records" for f in facts):
        raise ConfigError(
            "tpt pack --executor ray reads record files; the original documents of an augment run "
            "(--document-text full) are packed with --executor local"
        )
    files = [as_path(f) for fact in facts for f in fact["files"]]
    for batch, worker_job, prepared, after in RayUnits(files, preparer, planner, config, start, at):
        job, deferred = _plan(batch, planner, dups)
        deferred.at = after
        yield job, deferred, _subset(prepared, worker_job, job)


def _subset(prepared: Prepared, worker_job: Job, job: Job) -> Prepared:
    """A worker's Prepared for the records of `job` only (a subsequence of the worker's records)."""
    if list(worker_job.ordinals) == list(job.ordinals):
        return prepared
    where = {o: k for k, o in enumerate(worker_job.ordinals)}
    new = {where[o]: j for j, o in enumerate(job.ordinals)}
    return Prepared(
        verdicts=[prepared.verdicts[where[o]] for o in job.ordinals],
        texts=[(new[k], d, t) for k, d, t in prepared.texts if k in new],
        missing_thinking=[new[k] for k in prepared.missing_thinking if k in new],
        encoded=prepared.encoded,
    )


@dataclass(slots=True)
class _Deferred:
    """What planning a batch found, applied when the batch is accepted, in input order: planning runs
    ahead of the workers, and every count and log line must belong to the batches accepted so far
    (the state a commit saves)."""

    end: int
    """Input position after the batch."""
    sources: list[str] = field(default_factory=list)
    skips: list[tuple[int, RecordLine | BadLine, str, str]] = field(default_factory=list)
    flags: list[tuple[int, RecordLine, str]] = field(default_factory=list)
    """(input position, item, ...): the bad lines and repeated ids found while planning."""
    repeats: int = 0
    at: Checkpoint | None = None
    """Where the input stands after the batch (inputunits.py), when it can be entered there."""
    ids: list[tuple[int, int]] = field(default_factory=list)
    """(hash, position) of the ids first seen in the batch."""


def _plan(
    batch: list[tuple[int, RecordLine | BadLine]], planner: SamplePlanner, dups: DuplicateCheck
) -> tuple[Job, _Deferred]:
    """Find a batch's bad lines and repeated ids, and decide each record's samples (before
    validation: the decision depends only on the record's position, seed and source)."""
    deferred = _Deferred(end=batch[-1][0] + 1, sources=[item.source for _, item in batch])
    records = []
    for i, item in batch:
        if isinstance(item, BadLine):
            deferred.skips.append((i, item, item.reason, item.detail))
        elif repeat := dups.check(item.id, i):
            deferred.repeats += 1
            if dups.drops:
                deferred.skips.append((i, item, "duplicate_id", repeat))
                continue
            deferred.flags.append((i, item, repeat))
            records.append((i, item))
        else:
            records.append((i, item))
    if isinstance(dups.ids, JournaledIds):
        deferred.ids = dups.ids.take()
    ordinals = np.fromiter((i for i, _ in records), dtype=np.int64, count=len(records))
    copies = planner.copies(ordinals, [r.source for _, r in records])
    job = Job(
        # Workers need no raw line.
        records=[replace(r, raw=b"") for _, r in records],
        flags=[tuple(planner.raw_flags(i, n)) for (i, _), n in zip(records, copies.tolist(), strict=True)],
        ordinals=[i for i, _ in records],
    )
    return job, deferred


def _apply(deferred: _Deferred, stats: PackStats, skipped_log: Any, flagged_log: Any) -> None:
    for source in deferred.sources:
        stats.record(source)
    for at, item, reason, detail in deferred.skips:
        _skip(stats, skipped_log, item, reason, detail, at)
    for at, item, detail in deferred.flags:
        stats.flag(item.source, "duplicate_id")
        _log(flagged_log, item, "duplicate_id", detail, at)


def _accept(
    job: Job, prepared: Prepared, stats: PackStats, skipped_log: Any, flagged_log: Any
) -> list[PlannedRecord]:
    """Log what a worker rejected or flagged, count downsampled records, and place the kept records'
    texts."""
    for record, flags, verdict, at in zip(
        job.records, job.flags, prepared.verdicts, job.ordinals, strict=True
    ):
        if verdict is not None and verdict.drop:
            _skip(stats, skipped_log, record, verdict.reason, verdict.detail, at)
            continue
        if verdict is not None:  # reported, not dropped (--paper-faithful contamination)
            stats.flag(record.source, verdict.reason)
            _log(flagged_log, record, verdict.reason, verdict.detail, at)
        if not flags:
            stats.downsample(record.source)
    for k in prepared.missing_thinking:
        # Only reachable with --no-validate: the validator rejects these first.
        _skip(stats, skipped_log, job.records[k], "missing_thinking", "no 'thinking' field", job.ordinals[k])
    return [
        PlannedRecord(
            document, thinking, job.flags[k], stats.source_id(job.records[k].source), job.ordinals[k]
        )
        for k, document, thinking in prepared.texts
    ]


def _skip(
    stats: PackStats, log: _OrderedLog, item: RecordLine | BadLine, reason: str, detail: str, at: int
) -> None:
    stats.skip(item.source, reason)
    _log(log, item, reason, detail, at)


class _OrderedLog:
    """skipped.jsonl or flagged.jsonl: a batch's lines are written in input order, whichever step found
    them (planning, the checks), so the file does not depend on where batches end (--executor ray cuts
    them per input unit)."""

    def __init__(self, f: Any) -> None:
        self.f = f
        self.lines: list[tuple[int, str]] = []

    def add(self, at: int, line: str) -> None:
        self.lines.append((at, line))

    def flush_batch(self) -> None:
        self.lines.sort(key=lambda entry: entry[0])  # stable: one record's lines keep their order
        self.f.write("".join(line for _, line in self.lines))
        self.lines.clear()


def _log(log: _OrderedLog, item: RecordLine | BadLine, reason: str, detail: str, at: int) -> None:
    log.add(
        at,
        json.dumps(
            {
                "file": item.file,
                "line": item.line,
                "id": item.id,
                "source": item.source,
                "reason": reason,
                "detail": detail,
            },
            ensure_ascii=False,
            default=str,
        )
        + "\n",
    )


def _prepare_output(
    config: PackConfig,
) -> tuple[Path, CommitBook, tuple[int, PackState, JSONObject] | None]:
    """Claim the output directory and open its commits (commits.py). With none (a new directory, a
    finished pack, another config), a run replaces everything an earlier one left; with some, it keeps
    what the last commit covers and returns (commits, state, facts) to resume from."""
    out = Path(config.output)
    claim_output_dir(
        out,
        stage="pack",
        config={**config.fingerprinted(), "output": str(out), "batch_size": config.batch_size},
        fingerprinted=config.fingerprinted(),
        override=True,
    )
    # The parts are reusable only for the same fingerprinted config (inputs, seed, layout, ...).
    book = CommitBook(out / PARTS, {"config": config.fingerprinted()})
    commits = book.last()
    resumed = None
    keep: set[str] = set()
    if commits:
        facts = dict(book.committed(commits - 1) or {})
        if facts.get("open_rows"):  # the open shard may have been closed after the commit
            reopen_shard(out, facts["shards"])
        if _intact(out, facts, config.seq_len):
            resumed = (commits, book.state(commits - 1), facts)
            keep = {shard_name(i) for i in range(facts["shards"])}
            keep |= {open_path(out, facts["shards"], part).name for part in SHARD_PARTS}
        else:  # something the commits name is gone: start afresh
            book.remove()
            book = CommitBook(out / PARTS, {"config": config.fingerprinted()})
            commits = 0
    # Index first: a directory without index.json is not a finished pack.
    for name in ("index.json", "stats.json"):
        (out / name).unlink(missing_ok=True)
    if not commits:
        for name in ("skipped.jsonl", "flagged.jsonl"):
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / "megatron", ignore_errors=True)
    for old in (*out.glob("shard-*.npy"), *out.glob(".shard-*")):
        if old.name not in keep and (old.name.split(".")[0] not in keep or old.name.startswith(".")):
            old.unlink()  # not committed: written again (the open shard's files are cut back)
    for sub in ("tokenizer", _SPILL):  # the spill of --control shuffled is made again (pass 1)
        shutil.rmtree(out / sub, ignore_errors=True)
    return out, book, resumed


def _intact(out: Path, facts: JSONObject, seq_len: int) -> bool:
    """Whether the files the last commit covers are all there, at least as long as it recorded (the open
    shard's too: formats/packwriter.py)."""
    sizes = [("skipped.jsonl", facts["skipped_bytes"]), ("flagged.jsonl", facts["flagged_bytes"])]
    if facts["megatron_bytes"] is not None:
        sizes.append(("megatron/.text_document.bin.tmp", facts["megatron_bytes"]))
    open_rows = facts.get("open_rows", 0)
    if open_rows and not open_shard_intact(out, facts["shards"], open_rows, seq_len):
        return False
    if any(not (out / name).is_file() or (out / name).stat().st_size < size for name, size in sizes):
        return False
    parts = ("tokens", "kinds", "segments")
    return all(part_path(out, shard_name(i), p).is_file() for i in range(facts["shards"]) for p in parts)


def _log_file(path: Path, size: int | None) -> Any:
    """skipped.jsonl / flagged.jsonl: new, or a killed run's cut back to its last commit."""
    if size is None:
        return open(path, "w", encoding="utf-8")
    f = open(path, "r+", encoding="utf-8")
    f.truncate(size)
    f.seek(0, os.SEEK_END)
    return f


def _synced_size(f: Any) -> int:
    f.flush()
    os.fsync(f.fileno())
    return os.fstat(f.fileno()).st_size


def _sync_shards(out: Path, shards: list[ShardEntry]) -> None:
    """Flush the shards written since the last commit to disk before the commit names them."""
    for entry in shards:
        for part in ("tokens", "kinds", "segments"):
            fd = os.open(part_path(out, entry["name"], part), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _run_facts(
    config: PackConfig,
    checks: CheckConfig,
    student: StudentTokenizer,
    template: EncodedTemplate,
    seconds: float,
) -> dict[str, Any]:
    return {
        "mode": config.mode,
        "document_text": config.text,
        "raw_fraction": config.raw_fraction,
        "weights": config.weights,
        "seq_len": config.seq_len,
        "packing": config.packing,
        "seed": config.seed,
        "template": template.template.text,
        "think_tags": template.think_tags,
        "bos_id": template.bos_id,
        "validation": checks.as_dict() if config.validate else None,
        "tokenizer_source": str(student.source),
        "wall_seconds": round(seconds, 3),
    }


def _index(
    config: PackConfig,
    student: StudentTokenizer,
    template: EncodedTemplate,
    dtype: np.dtype,
    shards: list[ShardEntry],
) -> PackIndex:
    return index_json(
        seq_len=config.seq_len,
        dtype=dtype,
        vocab_size=student.vocab_size,
        eos_id=student.eos_id,
        pad_id=student.pad_id,
        bos_id=template.bos_id,
        bos_token=student.tokenizer.id_to_token(template.bos_id) if template.bos_id is not None else None,
        mode=config.mode,
        document_text=config.text,
        shards=shards,
        # Fields beyond the contract in docs/architecture.md:
        packing=config.packing,
        raw_fraction=config.raw_fraction,
        template={
            "name": template.template.name,
            "text": template.template.text,
            "eos_token": student.eos_token,
            "think_tags": template.think_tags,
        },
        stats="stats.json",
        control=config.control,
        megatron="megatron/text_document" if config.megatron else None,
    )
