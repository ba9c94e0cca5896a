"""`tpt pack`: augmented records -> validated, tokenized, mixed, shuffled, packed shards and stats.json."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tpt.core.artifacts import claim_output_dir, write_json
from tpt.core.control_tokens import text_only
from tpt.core.duplicate_ids import DuplicateCheck
from tpt.core.duplicate_ids import check_policy as check_duplicate_policy
from tpt.core.errors import ConfigError
from tpt.core.progress import Progress
from tpt.formats.packfile import PackIndex, ShardEntry, ShardWriter, index_json, token_dtype
from tpt.formats.reading import BadLine, RecordLine
from tpt.formats.student import StudentTokenizer, load_student_tokenizer, save_student_tokenizer
from tpt.formats.summaries import PackSummary
from tpt.pack.bos import BOS_SETTINGS, resolve_bos
from tpt.pack.controls import CONTROLS, Filler
from tpt.pack.documents import DOCUMENT_TEXTS, default_document_text, open_inputs
from tpt.pack.megatron import MegatronWriter
from tpt.pack.mixing import SamplePlanner, ShuffleBuffer
from tpt.pack.packing import POLICIES, RowPacker, Sample
from tpt.pack.pieces import DEFAULT_CAPACITY, piece_encoder_for
from tpt.pack.samples import PlannedRecord, assemble
from tpt.pack.spill import TrajectorySpill
from tpt.pack.stats import PackStats
from tpt.pack.template import (
    DEFAULT_TEMPLATE,
    EncodedTemplate,
    encode_template,
    parse_template,
)
from tpt.pack.workers import Job, Prepared, Preparer, WorkerPool, default_workers
from tpt.quality.checks import CheckConfig, Validator
from tpt.storage.outputlock import lock_output_dir

MODES = ("tpt", "raw")
# Settings that change how fast the output is made, not what it is.
_NOT_FINGERPRINTED = (
    "output",
    "batch_size",
    "batch_chars",
    "workers",
    "piece_cache",
    "progress",
    "checks",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class PackConfig:
    """Everything `tpt pack` needs; the CLI builds one from its flags."""

    inputs: tuple[str, ...]
    output: Path
    tokenizer: str
    seq_len: int
    mode: str = "tpt"
    document_text: str | None = None
    """full: the original document (from the corpus an augment run recorded); truncated: the record's
    text, as the teacher saw it. None: full for --mode raw, truncated for --mode tpt (documents.py)."""
    raw_fraction: float | None = None
    """--mix: in tpt mode, the chance that a sample is the raw document instead (None: no mix)."""
    weights: dict[str, float] = field(default_factory=dict)
    template: str = DEFAULT_TEMPLATE
    eos_token: str | None = None
    bos: str = "auto"
    """auto: every sample starts with BOS when the student tokenizer adds one (pack/bos.py); on; off."""
    packing: str = "stream"
    seed: int = 0
    shuffle_buffer: int = 10_000
    """Samples held for the shuffle (0: keep input order)."""
    shard_tokens: int = 1 << 24
    """Tokens per shard (rows per shard = shard_tokens // seq_len)."""
    batch_size: int = 1000
    batch_chars: int = 1 << 21
    """A batch also ends once its records hold this many characters (keeps the workers' jobs even)."""
    workers: int | None = None
    """Processes that validate and tokenize (None: one per core; 0: all in this process)."""
    piece_cache: int = DEFAULT_CAPACITY
    """Pieces each worker caches (pieces.py; 0: the tokenizer encodes every text whole)."""
    progress: bool = False
    """A progress line on stderr (records, rate, tokens/s); the CLI turns it on."""
    megatron: bool = False
    validate: bool = True
    checks: CheckConfig = field(default_factory=CheckConfig)
    duplicate_ids: str = "keep-both"
    """Records whose id came before: keep-both (reported in flagged.jsonl) or keep-first (skipped)."""
    control: str | None = None
    """A control arm of the TPT arm (pack/controls.py): shuffled (each document with another document's
    trajectory) or filler (content-free thinking of the same token count); None: the TPT arm itself."""
    control_seed: int | None = None
    """Seed of the shuffled control's derangement (None: --seed)."""

    def __post_init__(self) -> None:
        from tpt.storage import is_remote

        if is_remote(self.output):  # its inputs may be URLs; its output is read by memory-mapping
            raise ConfigError(
                f"--output {self.output}: pack writes memory-mapped shards that training reads from a local "
                "disk; give a local --output (its inputs may be s3://... URLs), then copy PACK_DIR to object "
                "storage if you want it kept there (docs/object-storage.md)"
            )
        if self.mode not in MODES:
            raise ConfigError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.document_text is not None and self.document_text not in DOCUMENT_TEXTS:
            raise ConfigError(
                f"--document-text must be one of {', '.join(DOCUMENT_TEXTS)}, got {self.document_text!r}"
            )
        if self.control is not None and self.control not in CONTROLS:
            raise ConfigError(f"--control must be one of {', '.join(CONTROLS)}, got {self.control!r}")
        if self.control is not None and self.mode != "tpt":
            raise ConfigError(
                f"--control {self.control} replaces the thinking of the TPT arm; it needs --mode tpt "
                f"(got --mode {self.mode})"
            )
        if self.control_seed is not None and self.control != "shuffled":
            raise ConfigError("--control-seed seeds the derangement of --control shuffled; it needs it")
        if self.raw_fraction is not None and self.mode != "tpt":
            raise ConfigError("--mix mixes raw documents into the TPT arm; it needs --mode tpt")
        if self.bos not in BOS_SETTINGS:
            raise ConfigError(f"--bos must be one of {', '.join(BOS_SETTINGS)}, got {self.bos!r}")
        if self.packing not in POLICIES:
            raise ConfigError(f"--packing must be one of {', '.join(POLICIES)}, got {self.packing!r}")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.workers is not None and self.workers < 0:
            raise ConfigError(f"--workers must be >= 0, got {self.workers}")
        if self.piece_cache < 0:
            raise ConfigError(f"--piece-cache must be >= 0, got {self.piece_cache}")
        if self.shard_tokens < 1:
            raise ConfigError(f"--shard-tokens must be >= 1, got {self.shard_tokens}")
        check_duplicate_policy(self.duplicate_ids)

    @property
    def text(self) -> str:
        """Which text of each document is packed: full or truncated."""
        return self.document_text or default_document_text(self.mode)

    def fingerprinted(self) -> dict[str, Any]:
        """The settings that change the output."""
        out = {k: v for k, v in asdict(self).items() if k not in _NOT_FINGERPRINTED}
        out["checks"] = self.checks.as_dict() if self.validate else None
        out["document_text"] = self.text
        return out


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
