"""`tpt pack`: augmented records -> validated, tokenized, mixed, shuffled, packed shards and stats.json."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tpt.core.artifacts import claim_output_dir, write_json
from tpt.core.control_tokens import text_only
from tpt.core.duplicate_ids import DuplicateCheck
from tpt.core.progress import Progress
from tpt.formats.packfile import PackIndex, ShardEntry, ShardWriter, index_json, token_dtype
from tpt.formats.reading import BadLine, RecordLine
from tpt.formats.student import StudentTokenizer, load_student_tokenizer, save_student_tokenizer
from tpt.formats.summaries import PackSummary
from tpt.pack.bos import resolve_bos
from tpt.pack.config import PackConfig
from tpt.pack.controls import Filler
from tpt.pack.documents import open_inputs
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
from tpt.pack.workers import Job, Prepared, Preparer, WorkerPool, default_workers
from tpt.quality.checks import CheckConfig, Validator
from tpt.storage.outputlock import lock_output_dir


def run(config: PackConfig, *, log: Any = print) -> PackSummary:
    """Pack config.inputs into config.output (shards, index.json, stats.json = `summary.to_json()`).

    `log` takes the stage's notes (which corpus a full text came from, unused --weights)."""
    with lock_output_dir(config.output, stage="pack"):
        return PackSummary.from_stats(config.output, _run_pack(config, log))


def _run_pack(config: PackConfig, log: Any) -> dict[str, Any]:
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
    out = _prepare_output(config)
    raw_fraction = 1.0 if config.mode == "raw" else config.raw_fraction or 0.0
    planner = SamplePlanner(seed=config.seed, weights=config.weights, raw_fraction=raw_fraction)
    stats = PackStats()
    dups = DuplicateCheck(config.duplicate_ids)
    shuffle: ShuffleBuffer[Sample] = ShuffleBuffer(config.shuffle_buffer, config.seed)
    packer = RowPacker(config.seq_len, config.packing, student.pad_id)
    dtype = token_dtype(student.vocab_size)
    shards = ShardWriter(
        out,
        seq_len=config.seq_len,
        dtype=dtype,
        rows_per_shard=config.shard_tokens // config.seq_len,
    )
    megatron = (
        MegatronWriter(out / "megatron" / "text_document", student.vocab_size) if config.megatron else None
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
        control_facts = {"name": "shuffled", **plan.facts()}
    elif config.control == "filler":
        filler = Filler(text_tokenizer)
        control_facts = {"name": "filler", **filler.facts()}
    preparer = Preparer(text_tokenizer, validator, pieces, thinking=spill is None)

    progress = Progress(None, label="pack", enabled=config.progress)

    def accept(job: Job, prepared: Prepared) -> None:
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
        emit(shuffle.push(assemble(planned, prepared.encoded, template, thinking)))
        rejected = sum(v is not None and v.drop for v in prepared.verdicts)
        rejected += len(prepared.missing_thinking)
        progress.update(done=len(job.records), failures=rejected, tokens=len(prepared.encoded.ids))

    try:
        with (
            open(out / "skipped.jsonl", "w", encoding="utf-8") as skipped_log,
            open(out / "flagged.jsonl", "w", encoding="utf-8") as flagged_log,
            WorkerPool(preparer, workers) as pool,
        ):
            for batch in _batches(items, config.batch_size, config.batch_chars):
                for done in pool.submit(_plan(batch, planner, stats, skipped_log, dups, flagged_log)):
                    accept(*done)
            for done in pool.drain():
                accept(*done)
        emit(shuffle.drain())
        shards.add(packer.finish())
        progress.close()
        if spill is not None:
            spill.finish()
    except BaseException:
        if megatron:
            megatron.abort()
        if spill is not None:
            spill.close()
        raise
    shard_list = shards.close()
    if megatron:
        megatron.close()
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
    items, _ = open_inputs(config.inputs, mode=config.mode, document_text=config.text, log=lambda *_: None)
    raw_fraction = config.raw_fraction or 0.0
    planner = SamplePlanner(seed=config.seed, weights=config.weights, raw_fraction=raw_fraction)
    stats = PackStats()
    dups = DuplicateCheck(config.duplicate_ids)
    with open(os.devnull, "w", encoding="utf-8") as null, WorkerPool(preparer, workers) as pool:

        def take(job: Job, prepared: Prepared) -> None:
            for rec in _accept(job, prepared, stats, null, null):
                source = stats.source_names[rec.source]
                if rec.thinking >= 0:
                    spill.add(rec.ordinal, source, prepared.encoded[rec.thinking], rec.augmented_copies)

        for batch in _batches(items, config.batch_size, config.batch_chars):
            for done in pool.submit(_plan(batch, planner, stats, null, dups, null)):
                take(*done)
        for done in pool.drain():
            take(*done)
    return spill.close_pass1(seed)


def _batches(items: Iterable[RecordLine | BadLine], size: int, chars: int) -> Iterator[list[tuple[int, Any]]]:
    """(position in the input, item) in batches of at most `size` items and about `chars` characters."""
    batch: list[tuple[int, Any]] = []
    held = 0
    for position, item in enumerate(items):
        batch.append((position, item))
        if isinstance(item, RecordLine):
            held += len(item.text) + len(item.thinking or "")
        if len(batch) >= size or held >= chars:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


def _plan(
    batch: list[tuple[int, RecordLine | BadLine]],
    planner: SamplePlanner,
    stats: PackStats,
    skipped_log: Any,
    dups: DuplicateCheck,
    flagged_log: Any,
) -> Job:
    """Count a batch, log its bad lines and repeated ids, and decide each record's samples (before
    validation: the decision depends only on the record's position, seed and source)."""
    for _, item in batch:
        stats.record(item.source)
    records = []
    for i, item in batch:
        if isinstance(item, BadLine):
            _skip(stats, skipped_log, item, item.reason, item.detail)
        elif (repeat := dups.check(item.id, i)) and dups.drops:
            _skip(stats, skipped_log, item, "duplicate_id", repeat)
        else:
            if repeat:
                stats.flag(item.source, "duplicate_id")
                _log(flagged_log, item, "duplicate_id", repeat)
            records.append((i, item))
    ordinals = np.fromiter((i for i, _ in records), dtype=np.int64, count=len(records))
    copies = planner.copies(ordinals, [r.source for _, r in records])
    return Job(
        # Workers need no raw line.
        records=[replace(r, raw=b"") for _, r in records],
        flags=[tuple(planner.raw_flags(i, n)) for (i, _), n in zip(records, copies.tolist(), strict=True)],
        ordinals=[i for i, _ in records],
    )


def _accept(
    job: Job, prepared: Prepared, stats: PackStats, skipped_log: Any, flagged_log: Any
) -> list[PlannedRecord]:
    """Log what a worker rejected or flagged, count downsampled records, and place the kept records'
    texts."""
    for record, flags, verdict in zip(job.records, job.flags, prepared.verdicts, strict=True):
        if verdict is not None and verdict.drop:
            _skip(stats, skipped_log, record, verdict.reason, verdict.detail)
            continue
        if verdict is not None:  # reported, not dropped (--paper-faithful contamination)
            stats.flag(record.source, verdict.reason)
            _log(flagged_log, record, verdict.reason, verdict.detail)
        if not flags:
            stats.downsample(record.source)
    for k in prepared.missing_thinking:
        # Only reachable with --no-validate: the validator rejects these first.
        _skip(stats, skipped_log, job.records[k], "missing_thinking", "no 'thinking' field")
    return [
        PlannedRecord(
            document, thinking, job.flags[k], stats.source_id(job.records[k].source), job.ordinals[k]
        )
        for k, document, thinking in prepared.texts
    ]


def _skip(stats: PackStats, log: Any, item: RecordLine | BadLine, reason: str, detail: str) -> None:
    stats.skip(item.source, reason)
    _log(log, item, reason, detail)


def _log(log: Any, item: RecordLine | BadLine, reason: str, detail: str) -> None:
    log.write(
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
        + "\n"
    )


def _prepare_output(config: PackConfig) -> Path:
    out = Path(config.output)
    claim_output_dir(
        out,
        stage="pack",
        config={**config.fingerprinted(), "output": str(out), "batch_size": config.batch_size},
        fingerprinted=config.fingerprinted(),
        override=True,
    )
    # A re-run replaces the whole output: drop what an earlier run left, index first (a directory
    # without index.json is not a finished pack).
    for name in ("index.json", "stats.json", "skipped.jsonl", "flagged.jsonl"):
        (out / name).unlink(missing_ok=True)
    for old in out.glob("shard-*.npy"):
        old.unlink()
    for sub in ("megatron", "tokenizer", _SPILL):
        shutil.rmtree(out / sub, ignore_errors=True)
    return out


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
