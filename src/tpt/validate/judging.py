"""One unit (input file) of `tpt validate` judged and committed: what a local run does in its process and a
Ray worker in its own (ray_units.py), so both write the same bytes."""

from __future__ import annotations

import json
from collections import Counter
from itertools import islice
from pathlib import Path
from typing import BinaryIO

import numpy as np

from tpt.core.duplicate_ids import DuplicateCheck, id_hash
from tpt.core.jsontypes import JSONObject
from tpt.formats.reading import BadLine, RecordLine, read_records
from tpt.quality.checks import Validator
from tpt.validate.units import UnitBook

BATCH_SIZE = 1000
MAX_LISTED = 100  # duplicate ids listed in summary.json (all are counted)


def judge_unit(
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
