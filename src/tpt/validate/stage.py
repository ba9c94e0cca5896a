"""`tpt validate`: split augmented records into kept.jsonl and rejected.jsonl, with counts per reason."""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from tpt.core.artifacts import claim_output_dir, write_json
from tpt.core.duplicate_ids import DuplicateCheck, check_policy
from tpt.core.errors import ConfigError
from tpt.formats.reading import BadLine, RecordLine, read_records, resolve_record_files
from tpt.formats.summaries import ValidateSummary
from tpt.quality.checks import CheckConfig, Validator
from tpt.storage import as_path, is_remote
from tpt.storage.outputlock import lock_output_dir
from tpt.storage.remote import upload

BATCH_SIZE = 1000
MAX_LISTED = 100  # duplicate ids listed in summary.json (all are counted)


@dataclass(frozen=True, kw_only=True, slots=True)
class ValidateConfig:
    """Everything `tpt validate` needs; the CLI builds one from its flags (validate/cli.py)."""

    inputs: tuple[str | Path, ...]
    """tpt augment output directories, or JSONL files/directories with 'text' and 'thinking' fields."""
    output: Path
    checks: CheckConfig = field(default_factory=CheckConfig)
    duplicate_ids: str = "keep-both"
    """Records whose id came before: keep-both (counted and listed in the summary) or keep-first
    (the later ones are rejected as duplicate_id; duplicate_ids.py)."""

    def __post_init__(self) -> None:
        if isinstance(self.inputs, str | Path) or not self.inputs:
            raise ConfigError("validate needs a sequence of one or more inputs")
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "output", as_path(self.output))  # a path or a URL (s3://...)
        check_policy(self.duplicate_ids)


def run(config: ValidateConfig) -> ValidateSummary:
    """Judge every record; kept ones are copied byte for byte, rejected ones carry their reason.

    Writes kept.jsonl, rejected.jsonl and summary.json (`ValidateSummary.to_json()`) to config.output."""
    with lock_output_dir(config.output, stage="validate"):
        return _run_validate(
            config.inputs, config.output, config.checks, DuplicateCheck(config.duplicate_ids)
        )


def _run_validate(
    inputs: Sequence[str | Path], output: Path, config: CheckConfig, dups: DuplicateCheck
) -> ValidateSummary:
    started = time.monotonic()
    files = resolve_record_files(inputs)
    out = as_path(output)
    # On object storage the files are written on local disk, then uploaded whole (one object each).
    work = Path(tempfile.mkdtemp(prefix="tpt-validate-")) if is_remote(out) else out
    claim_output_dir(
        out,
        stage="validate",
        config={"inputs": [str(i) for i in inputs], **config.as_dict(), "duplicate_ids": dups.policy},
        fingerprinted=config.as_dict(),
        override=True,
    )
    validator = Validator(config)
    repeats: list[dict[str, Any]] = []  # the first ones, for summary.json
    reasons: Counter[str] = Counter()
    by_source: dict[str, Counter[str]] = {}
    total = kept = 0
    items = read_records(files)
    with (
        open(work / "kept.jsonl.tmp", "wb") as kept_f,
        open(work / "rejected.jsonl.tmp", "wb") as rejected_f,
    ):
        while batch := list(islice(items, BATCH_SIZE)):
            records = [r for r in batch if isinstance(r, RecordLine)]
            verdicts = dict(zip(map(id, records), validator.judge(records), strict=True))
            for item in batch:
                total += 1
                repeat = None if isinstance(item, BadLine) else dups.check(item.id, total - 1)
                if repeat and len(repeats) < MAX_LISTED:
                    repeats.append({"file": item.file, "line": item.line, "id": item.id, "detail": repeat})
                if isinstance(item, BadLine):
                    reason, detail = item.reason, item.detail
                elif repeat and dups.drops:
                    reason, detail = "duplicate_id", repeat
                elif (verdict := verdicts[id(item)]) is not None and verdict.drop:
                    reason, detail = verdict.reason, verdict.detail
                else:
                    kept += 1
                    by_source.setdefault(item.source, Counter())["kept"] += 1
                    _write_line(kept_f, item.raw)
                    continue
                reasons[reason] += 1
                by_source.setdefault(item.source, Counter())[reason] += 1
                _write_rejected(rejected_f, item, reason, detail)
    for name in ("kept.jsonl", "rejected.jsonl"):
        if work is out:
            (work / f"{name}.tmp").replace(out / name)
        else:
            upload(work / f"{name}.tmp", out / name)
            (work / f"{name}.tmp").unlink()
    if work is not out:
        work.rmdir()
    summary = ValidateSummary(
        output=out,
        records=total,
        kept=kept,
        rejected=total - kept,
        by_reason=dict(sorted(reasons.items())),
        duplicate_ids=dups.count,
        duplicate_policy=dups.policy,
        duplicates_listed=tuple(repeats),
        by_source={s: dict(sorted(c.items())) for s, c in sorted(by_source.items())},
        inputs=tuple(str(f) for f in files),
        checks=config.as_dict(),
        wall_seconds=round(time.monotonic() - started, 3),
    )
    write_json(out / "summary.json", summary.to_json())
    return summary


def _write_line(f: BinaryIO, raw: bytes) -> None:
    f.write(raw if raw.endswith(b"\n") else raw + b"\n")


def _write_rejected(f: BinaryIO, item: RecordLine | BadLine, reason: str, detail: str) -> None:
    entry: dict[str, Any] = {
        "reason": reason,
        "detail": detail,
        "input": {"file": item.file, "line": item.line},
        "id": item.id,
        "source": item.source,
    }
    try:
        entry["record"] = json.loads(item.raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        entry["record"] = None
        entry["line_text"] = item.raw.rstrip(b"\r\n")[:2000].decode("utf-8", "replace")
    text = json.dumps(entry, ensure_ascii=False, default=str)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (unencodable_text): keep it as a JSON escape
        data = json.dumps(entry, default=str).encode("ascii")
    f.write(data + b"\n")
