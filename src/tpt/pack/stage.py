"""`tpt pack`: augmented records -> validated, tokenized, mixed, shuffled, packed shards and stats.json."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from tpt.artifacts import claim_output_dir, write_json
from tpt.errors import ConfigError
from tpt.pack.megatron import MegatronWriter
from tpt.pack.mixing import SamplePlanner, ShuffleBuffer
from tpt.pack.packing import PAD_SEGMENT, POLICIES, RowPacker, Sample
from tpt.pack.samples import BatchEncoder, PlannedRecord, assemble
from tpt.pack.shards import FORMAT, ShardWriter, token_dtype
from tpt.pack.stats import PackStats
from tpt.pack.template import (
    DEFAULT_TEMPLATE,
    KINDS,
    EncodedTemplate,
    encode_template,
    parse_template,
    prepare_document,
    prepare_thinking,
)
from tpt.tokenizer.student import StudentTokenizer, load_student_tokenizer, save_student_tokenizer
from tpt.validate.checks import CheckConfig, Validator
from tpt.validate.records import AugmentedRecord, BadLine, read_records, resolve_inputs

MODES = ("tpt", "raw")


@dataclass(frozen=True, kw_only=True, slots=True)
class PackConfig:
    """Everything `tpt pack` needs; the CLI builds one from its flags."""

    inputs: tuple[str, ...]
    output: Path
    tokenizer: str
    seq_len: int
    mode: str = "tpt"
    raw_fraction: float | None = None
    """--mix: in tpt mode, the chance that a sample is the raw document instead (None: no mix)."""
    weights: dict[str, float] = field(default_factory=dict)
    template: str = DEFAULT_TEMPLATE
    eos_token: str | None = None
    packing: str = "stream"
    seed: int = 0
    shuffle_buffer: int = 10_000
    """Samples held for the shuffle (0: keep input order)."""
    shard_tokens: int = 1 << 24
    """Tokens per shard (rows per shard = shard_tokens // seq_len)."""
    batch_size: int = 1000
    megatron: bool = False
    validate: bool = True
    checks: CheckConfig = field(default_factory=CheckConfig)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"--mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.raw_fraction is not None and self.mode != "tpt":
            raise ConfigError("--mix mixes raw documents into the TPT arm; it needs --mode tpt")
        if self.packing not in POLICIES:
            raise ConfigError(
                f"--packing must be one of {', '.join(POLICIES)}, got {self.packing!r}"
            )
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.shard_tokens < 1:
            raise ConfigError(f"--shard-tokens must be >= 1, got {self.shard_tokens}")

    def fingerprinted(self) -> dict[str, Any]:
        """The settings that change the output."""
        out = {k: v for k, v in asdict(self).items() if k not in ("output", "batch_size", "checks")}
        out["checks"] = self.checks.as_dict() if self.validate else None
        return out


def run_pack(config: PackConfig, *, log: Any = print) -> dict[str, Any]:
    """Pack config.inputs into config.output; returns the stats written to stats.json."""
    started = time.monotonic()
    files = resolve_inputs(config.inputs)
    student = load_student_tokenizer(config.tokenizer, eos_token=config.eos_token)
    template = encode_template(parse_template(config.template), student)
    # The student's special tokens count as control tokens: inside a text they would encode to them.
    checks = replace(
        config.checks, control_strings=config.checks.control_strings + student.special_tokens
    )
    validator = Validator(checks) if config.validate else None
    out = _prepare_output(config)
    raw_fraction = 1.0 if config.mode == "raw" else config.raw_fraction or 0.0
    planner = SamplePlanner(seed=config.seed, weights=config.weights, raw_fraction=raw_fraction)
    stats = PackStats()
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
        MegatronWriter(out / "megatron" / "text_document", student.vocab_size)
        if config.megatron
        else None
    )

    def emit(samples: list[Sample]) -> None:
        stats.add(samples)
        if megatron:
            megatron.add(samples)
        shards.add(packer.add(samples))

    try:
        with (
            open(out / "skipped.jsonl", "w", encoding="utf-8") as skipped_log,
            BatchEncoder[list[PlannedRecord]](student.tokenizer) as encoder,
        ):
            for batch in _batches(read_records(files), config.batch_size):
                texts, planned = _plan(batch, validator, planner, stats, skipped_log)
                for done, encoded in encoder.submit(texts, planned):
                    emit(shuffle.push(assemble(done, encoded, template)))
            for done, encoded in encoder.drain():
                emit(shuffle.push(assemble(done, encoded, template)))
        emit(shuffle.drain())
        shards.add(packer.finish())
    except BaseException:
        if megatron:
            megatron.abort()
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
    write_json(out / "stats.json", result)
    write_json(out / "index.json", _index(config, student, template, dtype, shard_list))
    return result


def _batches(
    items: Iterable[AugmentedRecord | BadLine], size: int
) -> Iterator[list[tuple[int, Any]]]:
    numbered = enumerate(items)
    while batch := list(islice(numbered, size)):
        yield batch


def _plan(
    batch: list[tuple[int, AugmentedRecord | BadLine]],
    validator: Validator | None,
    planner: SamplePlanner,
    stats: PackStats,
    skipped_log: Any,
) -> tuple[list[str], list[PlannedRecord]]:
    """Validate a batch, decide each record's samples, and list the texts to tokenize."""
    for _, item in batch:
        stats.record(item.source)
    records = [(i, r) for i, r in batch if isinstance(r, AugmentedRecord)]
    for _, bad in (x for x in batch if isinstance(x[1], BadLine)):
        _skip(stats, skipped_log, bad, bad.reason, bad.detail)
    if validator is not None:
        verdicts = validator.judge([r for _, r in records])
        for (_, record), verdict in zip(records, verdicts, strict=True):
            if verdict is not None:
                _skip(stats, skipped_log, record, verdict.reason, verdict.detail)
        records = [x for x, v in zip(records, verdicts, strict=True) if v is None]
    ordinals = np.fromiter((i for i, _ in records), dtype=np.int64, count=len(records))
    copies = planner.copies(ordinals, [r.source for _, r in records])
    texts: list[str] = []
    planned: list[PlannedRecord] = []
    for (ordinal, record), n in zip(records, copies.tolist(), strict=True):
        if n == 0:
            stats.downsample(record.source)
            continue
        flags = tuple(planner.raw_flags(ordinal, n))
        if not all(flags) and record.thinking is None:
            # Only reachable with --no-validate: the validator rejects these first.
            _skip(stats, skipped_log, record, "missing_thinking", "no 'thinking' field")
            continue
        document, thinking = len(texts), -1
        texts.append(prepare_document(record.text))
        if not all(flags):
            thinking = len(texts)
            texts.append(prepare_thinking(record.thinking or ""))
        planned.append(PlannedRecord(document, thinking, flags, stats.source_id(record.source)))
    return texts, planned


def _skip(
    stats: PackStats, log: Any, item: AugmentedRecord | BadLine, reason: str, detail: str
) -> None:
    stats.skip(item.source, reason)
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
    for name in ("index.json", "stats.json", "skipped.jsonl"):
        (out / name).unlink(missing_ok=True)
    for old in out.glob("shard-*.npy"):
        old.unlink()
    for sub in ("megatron", "tokenizer"):
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
        "raw_fraction": config.raw_fraction,
        "weights": config.weights,
        "seq_len": config.seq_len,
        "packing": config.packing,
        "seed": config.seed,
        "template": template.template.text,
        "think_tags": template.think_tags,
        "validation": checks.as_dict() if config.validate else None,
        "tokenizer_source": str(student.source),
        "wall_seconds": round(seconds, 3),
    }


def _index(
    config: PackConfig,
    student: StudentTokenizer,
    template: EncodedTemplate,
    dtype: np.dtype,
    shards: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "seq_len": config.seq_len,
        "dtype": dtype.name,
        "vocab_size": student.vocab_size,
        "eos_id": student.eos_id,
        "pad_id": student.pad_id,
        "mode": config.mode,
        "tokenizer": "tokenizer",
        "num_rows": sum(s["rows"] for s in shards),
        "shards": shards,
        "kinds": {str(k): v for k, v in KINDS.items()},
        # Fields beyond the contract in docs/architecture.md:
        "segments_pad": PAD_SEGMENT,
        "packing": config.packing,
        "raw_fraction": config.raw_fraction,
        "template": {
            "name": template.template.name,
            "text": template.template.text,
            "eos_token": student.eos_token,
            "think_tags": template.think_tags,
        },
        "stats": "stats.json",
        "megatron": "megatron/text_document" if config.megatron else None,
    }
