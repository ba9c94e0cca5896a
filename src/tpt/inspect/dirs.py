"""What kind of tpt directory a path is, and one pass over it: its streamed counts, its own summary files
(summary.json, stats.json, manifest.json, estimate.json) and the sampled records the browser shows.

- augment: shards/part-*.jsonl|parquet (records, check result 'not checked'), failures.jsonl;
- validate: kept.jsonl (check result 'kept') and rejected.jsonl (the reason);
- pack: stats.json and index.json (arm, mode, control, weights, tokens by span kind), and the records
  it read (its inputs, when they are still there) with skipped.jsonl's and flagged.jsonl's reasons;
- a `tpt estimate --output` directory: its augmented/ run, with the cost figures of estimate.json.
The directory may be a URL on object storage (tpt.storage).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tpt.core.errors import InputError
from tpt.core.jsontypes import JSONObject
from tpt.formats.reading import augment_shards, record_file_lines
from tpt.inspect.scan import Fields, Reservoir, Tally, fields_of, fields_of_object
from tpt.storage import as_path, display

KINDS = ("augment", "validate", "pack")
NOT_CHECKED = "not checked"
KEPT = "kept"
PACKED = "packed"
_RECORD_KEY = b', "record": '


@dataclass
class Sampled:
    """A record the reservoir kept: where it is, its check result, and its raw line."""

    file: str
    line: int
    check: str
    detail: str | None
    raw: bytes
    nested: bool = False
    """The raw line is a rejected.jsonl entry: the record is its 'record' field."""


@dataclass
class DirData:
    """Everything the report shows of one directory."""

    path: str
    kind: str
    tally: Tally
    samples: list[Sampled]
    summary: JSONObject = field(default_factory=dict)
    """The stage's own summary (summary.json, or pack's stats.json)."""
    manifest: JSONObject = field(default_factory=dict)
    estimate: JSONObject | None = None
    index: JSONObject = field(default_factory=dict)
    """pack: index.json."""
    failures: Counter[str] = field(default_factory=Counter)
    failure_examples: dict[str, str] = field(default_factory=dict)
    duplicates_kept: int = 0
    files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    provenance: JSONObject | None = None
    """A sampled record's provenance: the sampling parameters in force, as the backend sent them."""


def _json_file(path: Any) -> JSONObject:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{display(path)}: not a readable JSON file ({exc})") from None
    if not isinstance(obj, dict):
        raise InputError(f"{display(path)}: expected a JSON object")
    return obj


def kind_of(path: Any) -> tuple[str, Any, JSONObject | None]:
    """(kind, the directory to read, estimate.json or None); an InputError when it is none of them."""
    if not path.is_dir():
        raise InputError(f"{display(path)} is not a directory (tpt inspect reads tpt output directories)")
    if (path / "estimate.json").is_file() and (path / "augmented").is_dir():
        return "augment", path / "augmented", _json_file(path / "estimate.json")
    stage = None
    if (path / "manifest.json").is_file():
        stage = _json_file(path / "manifest.json").get("stage")
    if stage in KINDS:
        kind = stage
    elif (path / "shards").is_dir():
        kind = "augment"
    elif (path / "stats.json").is_file() and (path / "index.json").is_file():
        kind = "pack"
    elif (path / "kept.jsonl").is_file():
        kind = "validate"
    else:
        raise InputError(
            f"{display(path)} is not a tpt augment, validate or pack output directory "
            "(no manifest.json, shards/, kept.jsonl or stats.json)"
        )
    estimate = None
    if kind == "augment" and path.name == "augmented" and (path.parent / "estimate.json").is_file():
        estimate = _json_file(path.parent / "estimate.json")
    return kind, path, estimate


def read_dir(spec: str | Path, *, per_group: int, seed: int, scatter: int) -> DirData:
    path = as_path(spec)
    kind, root, estimate = kind_of(path)
    data = DirData(path=display(root), kind=kind, tally=Tally(), samples=[], estimate=estimate)
    if (root / "manifest.json").is_file():
        data.manifest = _json_file(root / "manifest.json")
    rng = random.Random(seed)
    reservoir = Reservoir(per_group, seed)
    if kind == "augment":
        if (root / "summary.json").is_file():
            data.summary = _json_file(root / "summary.json")
        files = augment_shards(root)
        if not files:
            data.notes.append("no committed shards yet: has `tpt augment` run?")
        for f in files:
            _scan_records(data, f, NOT_CHECKED, None, reservoir, rng, scatter)
        _read_failures(data, root)
    elif kind == "validate":
        if (root / "summary.json").is_file():
            data.summary = _json_file(root / "summary.json")
        if not (root / "kept.jsonl").is_file():
            raise InputError(f"{display(root)} is a `tpt validate` directory without kept.jsonl")
        _scan_records(data, root / "kept.jsonl", KEPT, None, reservoir, rng, scatter)
        if (root / "rejected.jsonl").is_file():
            _scan_rejected(data, root / "rejected.jsonl", reservoir, rng, scatter)
    else:
        if not (root / "stats.json").is_file():
            raise InputError(
                f"{display(root)} is a `tpt pack` directory without stats.json: has the pack finished?"
            )
        data.summary = _json_file(root / "stats.json")
        if (root / "index.json").is_file():
            data.index = _json_file(root / "index.json")
        _scan_pack_inputs(data, root, reservoir, rng, scatter)
    data.samples = reservoir.items()
    data.provenance = _provenance(data.samples)
    return data


def _provenance(samples: list[Sampled]) -> JSONObject | None:
    for s in samples:
        try:
            obj = json.loads(s.raw)
        except ValueError:
            continue
        rec = obj.get("record") if s.nested and isinstance(obj, dict) else obj
        if isinstance(rec, dict) and isinstance(rec.get("provenance"), dict):
            return rec["provenance"]
    return None


def _scan_records(
    data: DirData,
    path: Any,
    check: str | dict[tuple[str, int], tuple[str, str]],
    flagged: dict[tuple[str, int], tuple[str, str]] | None,
    reservoir: Reservoir,
    rng: random.Random,
    scatter: int,
) -> None:
    """Count every record line of one file; `check` is the check result of all of them, or (pack) the
    skipped records' (reason, detail) by (file, line), every other one being 'packed'."""
    name = str(path)
    default_source = path.name.split(".")[0]
    data.files.append(display(path))
    lookup = check if isinstance(check, dict) else None
    tally = data.tally
    # a pack's downsampled records (a source weight below 1) are in no log: they cannot be told apart
    downsampled = (data.summary.get("records") or {}).get("downsampled") if data.kind == "pack" else 0
    packed_label = f"{PACKED} or downsampled" if downsampled else PACKED
    for number, raw in record_file_lines(path):
        detail = None
        if lookup is None:
            result = check
        else:
            hit = lookup.get((name, number))
            if hit is None and flagged and (flag := flagged.get((name, number))):
                result, detail = f"{PACKED}, flagged {flag[0]}", flag[1]
            elif hit is None:
                result = packed_label
            else:
                result, detail = hit
        f = fields_of(raw, default_source)
        if isinstance(f, str):
            tally.unreadable[f] += 1
            continue
        tally.add(f, result, rng, scatter)  # type: ignore[arg-type]
        if (where := reservoir.offer((f.source, result))) is not None:  # type: ignore[arg-type]
            reservoir.put(where, Sampled(name, number, result, detail, raw))  # type: ignore[arg-type]


def _scan_rejected(data: DirData, path: Any, reservoir: Reservoir, rng: random.Random, scatter: int) -> None:
    """rejected.jsonl: {"reason", "detail", "input", "id", "source", "record"} a line."""
    data.files.append(display(path))
    for number, raw in record_file_lines(path):
        head, f = _rejected_entry(raw)
        if head is None:
            data.tally.unreadable["malformed_json"] += 1
            continue
        reason = str(head.get("reason"))
        where = head.get("input") if isinstance(head.get("input"), dict) else {}
        if f is None:  # a line validate could not read: counted under its reason, nothing to show
            data.tally.add_line_without_record(str(head.get("source") or "(unknown)"), reason)
            continue
        data.tally.add(f, reason, rng, scatter)
        item = Sampled(str(where.get("file", path)), int(where.get("line") or number), reason,
                       str(head.get("detail", "")), raw, nested=True)  # fmt: skip
        reservoir.add((f.source, reason), item)


def _rejected_entry(raw: bytes) -> tuple[JSONObject | None, Fields | None]:
    k = raw.find(_RECORD_KEY)
    if k > 0:
        try:
            head = json.loads(raw[:k] + b"}")
        except ValueError:
            head = None
        if isinstance(head, dict) and "reason" in head:
            rest = raw[k + len(_RECORD_KEY) :].rstrip()
            if rest.startswith(b"null"):
                return head, None
            rest = rest[:-1]  # the entry's closing brace: the record is its last field
            f = fields_of(rest, str(head.get("source") or "(unknown)"))
            if not isinstance(f, str):
                return head, f
    try:  # the slow path: the whole entry
        obj = json.loads(raw)
    except ValueError:
        return None, None
    if not isinstance(obj, dict):
        return None, None
    rec = obj.get("record")
    f = fields_of_object(rec, str(obj.get("source") or "(unknown)")) if isinstance(rec, dict) else None
    return obj, (None if isinstance(f, str) else f)


def _read_failures(data: DirData, root: Any) -> None:
    """failures.jsonl (rebuilt by every augment run), else the committed shards' failure files."""
    files = [root / "failures.jsonl"] if (root / "failures.jsonl").is_file() else []
    if not files and (root / "shards").is_dir():
        files = sorted(p for p in (root / "shards").glob("part-*.failures.jsonl"))
    for path in files:
        for _, raw in record_file_lines(path):
            try:
                obj = json.loads(raw)
            except ValueError:
                data.failures["(unreadable failure line)"] += 1
                continue
            if not isinstance(obj, dict):
                continue
            if obj.get("kept"):  # a duplicate id that was kept: not a failure
                data.duplicates_kept += 1
                continue
            reason = str(obj.get("reason"))
            data.failures[reason] += 1
            data.failure_examples.setdefault(reason, str(obj.get("detail", ""))[:300])


def _log_entries(path: Any) -> Iterator[JSONObject]:
    if not path.is_file():
        return
    for _, raw in record_file_lines(path):
        try:
            obj = json.loads(raw)
        except ValueError:
            continue
        if isinstance(obj, dict):
            yield obj


def _scan_pack_inputs(
    data: DirData, root: Any, reservoir: Reservoir, rng: random.Random, scatter: int
) -> None:
    """The records a pack read (stats.json's inputs), each with its result: packed, or skipped.jsonl's
    reason, or packed and flagged (flagged.jsonl)."""

    def by_line(name: str) -> dict[tuple[str, int], tuple[str, str]]:
        return {
            (str(e.get("file")), int(e.get("line") or 0)): (
                str(e.get("reason")),
                str(e.get("detail", ""))[:300],
            )
            for e in _log_entries(root / name)
        }

    skipped, flagged = by_line("skipped.jsonl"), by_line("flagged.jsonl")
    files = [f for entry in data.summary.get("inputs", []) for f in entry.get("files", [])]
    missing = [f for f in files if not as_path(f).is_file()]
    if missing:
        data.notes.append(
            f"{len(missing)} of the {len(files)} record files this pack read are gone "
            f"(first: {display(missing[0])}): no lengths or samples, only the pack's own figures"
        )
        return
    for f in files:
        _scan_records(data, as_path(f), skipped, flagged, reservoir, rng, scatter)
