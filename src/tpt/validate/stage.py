"""`tpt validate`: split augmented records into kept.jsonl and rejected.jsonl, with counts per reason."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tpt.core.artifacts import claim_output_dir, write_json
from tpt.core.duplicate_ids import DuplicateCheck, id_hash
from tpt.core.jsontypes import JSONObject
from tpt.formats.reading import BadLine, RecordLine, read_records, resolve_record_files
from tpt.formats.summaries import ValidateSummary
from tpt.quality.checks import CheckConfig, Validator
from tpt.storage import as_path, is_remote
from tpt.storage.outputlock import lock_output_dir
from tpt.storage.remote import upload
from tpt.validate.config import ValidateConfig
from tpt.validate.units import PARTS, UnitBook

BATCH_SIZE = 1000
MAX_LISTED = 100  # duplicate ids listed in summary.json (all are counted)


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
    # On object storage the files are written on local disk, then uploaded whole (one object each);
    # such a run is not resumable (its parts lie in a temporary directory).
    work = Path(tempfile.mkdtemp(prefix="tpt-validate-")) if is_remote(out) else out
    run_config = {"inputs": [str(i) for i in inputs], **config.as_dict(), "duplicate_ids": dups.policy}
    claim_output_dir(out, stage="validate", config=run_config, fingerprinted=config.as_dict(), override=True)
    # The parts are reusable only for the same checks, policy and input files (units.py).
    book = UnitBook(work / PARTS, {"config": run_config, "files": [str(f) for f in files]})
    validator = Validator(config)
    totals = _Totals()
    for unit, path in enumerate(files):
        facts = book.committed(unit)
        if facts is None:
            facts = _judge_unit(book, unit, path, totals.records, validator, dups)
        else:  # committed by an earlier run: its ids go back into the registry, in read order
            for h, position in book.ids(unit).tolist():
                dups.ids.add(h, position)
            dups.count += facts["duplicate_ids"]
        totals.add(facts)
    book.merge(work, len(files))
    for name in ("kept.jsonl", "rejected.jsonl"):
        if work is not out:
            upload(work / name, out / name)
            (work / name).unlink()
    summary = ValidateSummary(
        output=out,
        records=totals.records,
        kept=totals.kept,
        rejected=totals.records - totals.kept,
        by_reason=dict(sorted(totals.reasons.items())),
        duplicate_ids=dups.count,
        duplicate_policy=dups.policy,
        duplicates_listed=tuple(totals.repeats),
        by_source={s: dict(sorted(c.items())) for s, c in sorted(totals.by_source.items())},
        inputs=tuple(str(f) for f in files),
        checks=config.as_dict(),
        wall_seconds=round(time.monotonic() - started, 3),
    )
    write_json(out / "summary.json", summary.to_json())
    book.remove()
    if work is not out:
        shutil.rmtree(work, ignore_errors=True)
    return summary


class _Totals:
    """The run's counts, added up from its units' facts (units.py) in unit order."""

    def __init__(self) -> None:
        self.records = self.kept = 0
        self.reasons: Counter[str] = Counter()
        self.by_source: dict[str, Counter[str]] = {}
        self.repeats: list[JSONObject] = []  # the first ones, for summary.json

    def add(self, facts: JSONObject) -> None:
        self.records += facts["records"]
        self.kept += facts["kept"]
        self.reasons.update(facts["by_reason"])
        for source, counts in facts["by_source"].items():
            self.by_source.setdefault(source, Counter()).update(counts)
        self.repeats.extend(facts["listed"][: MAX_LISTED - len(self.repeats)])


def _judge_unit(
    book: UnitBook, unit: int, path: Path, start: int, validator: Validator, dups: DuplicateCheck
) -> JSONObject:
    """Judge one input file (its records are input items start, start + 1, ...) and commit it."""
    listed: list[JSONObject] = []  # the unit's first repeats (the run lists the first overall)
    reasons: Counter[str] = Counter()
    by_source: dict[str, Counter[str]] = {}
    ids: list[tuple[int, int]] = []
    total, kept, repeats_before = start, 0, dups.count
    items = read_records([path])
    with (
        open(book.staging(unit, "kept"), "wb") as kept_f,
        open(book.staging(unit, "rejected"), "wb") as rejected_f,
    ):
        while batch := list(islice(items, BATCH_SIZE)):
            records = [r for r in batch if isinstance(r, RecordLine)]
            verdicts = dict(zip(map(id, records), validator.judge(records), strict=True))
            for item in batch:
                total += 1
                repeat = None
                if not isinstance(item, BadLine) and item.id is not None:
                    ids.append((id_hash(item.id), total - 1))
                    repeat = dups.check(item.id, total - 1)
                if repeat and len(listed) < MAX_LISTED:
                    listed.append({"file": item.file, "line": item.line, "id": item.id, "detail": repeat})
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
    facts = {
        "file": str(path),
        "records": total - start,
        "kept": kept,
        "by_reason": dict(reasons),
        "by_source": {s: dict(c) for s, c in by_source.items()},
        "duplicate_ids": dups.count - repeats_before,
        "listed": listed,
    }
    book.commit(unit, facts, np.asarray(ids, dtype=np.int64).reshape(-1, 2))
    return facts


def _write_line(f: BinaryIO, raw: bytes) -> None:
    f.write(raw if raw.endswith(b"\n") else raw + b"\n")


def _write_rejected(f: BinaryIO, item: RecordLine | BadLine, reason: str, detail: str) -> None:
    entry: JSONObject = {
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
