"""`tpt validate`: split augmented records into kept.jsonl and rejected.jsonl, with counts per reason."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from tpt.artifacts import claim_output_dir, write_json
from tpt.duplicate_ids import DuplicateCheck
from tpt.outputlock import lock_output_dir
from tpt.validate.checks import CheckConfig, Validator
from tpt.validate.records import AugmentedRecord, BadLine, read_records, resolve_inputs

BATCH_SIZE = 1000
MAX_LISTED = 100  # duplicate ids listed in summary.json (all are counted)


@dataclass(frozen=True, kw_only=True, slots=True)
class ValidateSummary:
    records: int
    kept: int
    rejected: int
    by_reason: dict[str, int]
    duplicate_ids: int = 0


def run_validate(
    inputs: Sequence[str | Path], output: Path, config: CheckConfig, *, duplicate_ids: str = "keep-both"
) -> ValidateSummary:
    """Judge every record; kept ones are copied byte for byte, rejected ones carry their reason.

    Records whose id came before are reported (summary.json) and, with duplicate_ids="keep-first",
    rejected as duplicate_id (duplicate_ids.py)."""
    with lock_output_dir(output, stage="validate"):
        return _run_validate(inputs, output, config, DuplicateCheck(duplicate_ids))


def _run_validate(
    inputs: Sequence[str | Path], output: Path, config: CheckConfig, dups: DuplicateCheck
) -> ValidateSummary:
    started = time.monotonic()
    files = resolve_inputs(inputs)
    out = Path(output)
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
        open(out / "kept.jsonl.tmp", "wb") as kept_f,
        open(out / "rejected.jsonl.tmp", "wb") as rejected_f,
    ):
        while batch := list(islice(items, BATCH_SIZE)):
            records = [r for r in batch if isinstance(r, AugmentedRecord)]
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
    (out / "kept.jsonl.tmp").replace(out / "kept.jsonl")
    (out / "rejected.jsonl.tmp").replace(out / "rejected.jsonl")
    summary = ValidateSummary(
        records=total,
        kept=kept,
        rejected=total - kept,
        by_reason=dict(sorted(reasons.items())),
        duplicate_ids=dups.count,
    )
    write_json(
        out / "summary.json",
        {
            "records": total,
            "kept": kept,
            "rejected": total - kept,
            "by_reason": summary.by_reason,
            "duplicate_ids": {"count": dups.count, "policy": dups.policy, "listed": repeats},
            "by_source": {s: dict(sorted(c.items())) for s, c in sorted(by_source.items())},
            "inputs": [str(f) for f in files],
            "checks": config.as_dict(),
            "wall_seconds": round(time.monotonic() - started, 3),
        },
    )
    return summary


def _write_line(f: BinaryIO, raw: bytes) -> None:
    f.write(raw if raw.endswith(b"\n") else raw + b"\n")


def _write_rejected(f: BinaryIO, item: AugmentedRecord | BadLine, reason: str, detail: str) -> None:
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
