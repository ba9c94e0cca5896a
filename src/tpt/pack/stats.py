"""Token accounting of a pack run: what was read, skipped, sampled and written, overall and per source.

Sample counts come from the samples as they are packed; the totals are then checked against the
kinds counted in the written shards, so stats.json adds up to the shards exactly or the run fails.

Each commit (commits.py) saves the counts added since the commit before (`part()`), and a resumed run
adds the parts up again (`merged`): the run's accounting is merged from per-commit parts, not carried in
the state pickle, so it can be checked and combined without unpickling anything.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from tpt.core.errors import ArtifactError
from tpt.core.jsontypes import JSONObject
from tpt.formats.packfile import KIND_DOCUMENT, KIND_PAD, KIND_TEMPLATE, KIND_THINKING
from tpt.pack.packing import Sample

_TOKEN_KEYS = {
    KIND_DOCUMENT: "document_tokens",
    KIND_THINKING: "thinking_tokens",
    KIND_TEMPLATE: "template_tokens",
}


def _new_source() -> dict[str, Any]:
    return {
        "records": 0,
        "skipped": 0,
        "skipped_by_reason": {},
        "flagged": {},
        "downsampled": 0,
        "documents": 0,
        "raw_samples": 0,
        "augmented_samples": 0,
        "document_tokens": 0,
        "thinking_tokens": 0,
        "template_tokens": 0,
        "total_tokens": 0,
    }


class PackStats:
    """Accumulates counts while packing; `finish` checks them against the shards and returns stats.json."""

    def __init__(self) -> None:
        self.source_names: list[str] = []
        self._source_ids: dict[str, int] = {}
        self.by_source: dict[str, dict[str, Any]] = {}
        self.skipped: Counter[str] = Counter()
        self.flagged: Counter[str] = Counter()
        self._at_part = self._counts()

    def _counts(self) -> JSONObject:
        return {
            "sources": list(self.source_names),
            "by_source": copy.deepcopy(self.by_source),
            "skipped": dict(self.skipped),
            "flagged": dict(self.flagged),
        }

    def part(self) -> JSONObject:
        """The counts added since the last part (a commit's part, JSON; the source table in full)."""
        now = self._counts()
        before = self._at_part
        self._at_part = now
        return {
            "sources": now["sources"],
            "by_source": {
                name: _minus(entry, before["by_source"].get(name, {}))
                for name, entry in now["by_source"].items()
            },
            "skipped": _minus(now["skipped"], before["skipped"]),
            "flagged": _minus(now["flagged"], before["flagged"]),
        }

    @classmethod
    def merged(cls, parts: Iterable[JSONObject]) -> PackStats:
        """The accounting of the parts' commits: their counts added, the source table in its order."""
        stats = cls()
        for part in parts:
            for name in part["sources"]:
                stats.source_id(name)
            for name, delta in part["by_source"].items():
                _plus(stats.by_source[name], delta)
            stats.skipped.update(part["skipped"])
            stats.flagged.update(part["flagged"])
        stats._at_part = stats._counts()
        return stats

    def source_id(self, name: str) -> int:
        if name not in self._source_ids:
            self._source_ids[name] = len(self.source_names)
            self.source_names.append(name)
            self.by_source[name] = _new_source()
        return self._source_ids[name]

    def record(self, source: str) -> None:
        self.by_source[self.source_names[self.source_id(source)]]["records"] += 1

    def skip(self, source: str, reason: str) -> None:
        self.source_id(source)
        entry = self.by_source[source]
        entry["skipped"] += 1
        entry["skipped_by_reason"][reason] = entry["skipped_by_reason"].get(reason, 0) + 1
        self.skipped[reason] += 1

    def flag(self, source: str, reason: str) -> None:
        """A record a report-only check hit (contamination under --paper-faithful): packed, counted."""
        self.source_id(source)
        flagged = self.by_source[source]["flagged"]
        flagged[reason] = flagged.get(reason, 0) + 1
        self.flagged[reason] += 1

    def downsample(self, source: str) -> None:
        self.by_source[source]["downsampled"] += 1

    def add(self, samples: Sequence[Sample]) -> None:
        for sample in samples:
            entry = self.by_source[self.source_names[sample.source]]
            entry["documents"] += 1
            entry["augmented_samples" if sample.augmented else "raw_samples"] += 1
            for kind, n in sample.runs:
                entry[_TOKEN_KEYS[kind]] += n
            entry["total_tokens"] += len(sample.ids)

    def dropped_share(self) -> dict[str, Any]:
        """The share of records read that were not packed (skipped), overall and per source, by reason:
        a filter that removed 30% of the math shows here, not only in skipped.jsonl."""
        read = sum(s["records"] for s in self.by_source.values())
        return {
            "all": _share(sum(self.skipped.values()), read),
            "by_reason": {k: _share(v, read) for k, v in sorted(self.skipped.items())},
            "by_source": {
                name: {
                    "all": _share(entry["skipped"], entry["records"]),
                    "by_reason": {
                        k: _share(v, entry["records"]) for k, v in sorted(entry["skipped_by_reason"].items())
                    },
                }
                for name, entry in sorted(self.by_source.items())
            },
        }

    def _source_entry(self, name: str) -> dict[str, Any]:
        entry = dict(self.by_source[name])
        entry["skipped_by_reason"] = dict(sorted(entry["skipped_by_reason"].items()))
        entry["flagged"] = dict(sorted(entry["flagged"].items()))
        return entry

    def finish(
        self,
        *,
        rows: int,
        seq_len: int,
        pad_tokens: int,
        split_samples: int,
        kind_counts: np.ndarray,
    ) -> dict[str, Any]:
        totals = {
            key: sum(s[key] for s in self.by_source.values())
            for key, value in _new_source().items()
            if isinstance(value, int)
        }
        stats: dict[str, Any] = {
            "documents": totals["documents"],
            "raw_samples": totals["raw_samples"],
            "augmented_samples": totals["augmented_samples"],
            "rows": rows,
            "document_tokens": totals["document_tokens"],
            "thinking_tokens": totals["thinking_tokens"],
            "template_tokens": totals["template_tokens"],
            "total_tokens": totals["total_tokens"],
            "pad_tokens": pad_tokens,
            "capacity_tokens": rows * seq_len,
            "split_samples": split_samples,
            "records": {
                "read": totals["records"],
                "packed": totals["records"] - totals["skipped"] - totals["downsampled"],
                "skipped": totals["skipped"],
                "downsampled": totals["downsampled"],
            },
            "skipped": dict(sorted(self.skipped.items())),
            "dropped_share": self.dropped_share(),
            "flagged": dict(sorted(self.flagged.items())),
            "by_source": {name: self._source_entry(name) for name in sorted(self.by_source)},
        }
        written = {
            "document_tokens": int(kind_counts[KIND_DOCUMENT]),
            "thinking_tokens": int(kind_counts[KIND_THINKING]),
            "template_tokens": int(kind_counts[KIND_TEMPLATE]),
            "pad_tokens": int(kind_counts[KIND_PAD]),
        }
        wrong = {k: (stats[k], v) for k, v in written.items() if stats[k] != v}
        if wrong or stats["total_tokens"] + pad_tokens != rows * seq_len:
            raise ArtifactError(
                f"internal error: token accounting does not match the shards ({wrong}); "
                "please report this with the command line"
            )
        return stats


def _minus(now: JSONObject, before: JSONObject) -> JSONObject:
    """now - before, key by key (ints, or dicts of ints one level down); keys that did not change left out."""
    out: JSONObject = {}
    for key, value in now.items():
        diff = _minus(value, before.get(key, {})) if isinstance(value, dict) else value - before.get(key, 0)
        if diff:
            out[key] = diff
    return out


def _plus(into: JSONObject, delta: JSONObject) -> None:
    for key, value in delta.items():
        if isinstance(value, dict):
            _plus(into.setdefault(key, {}), value)
        else:
            into[key] = into.get(key, 0) + value


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0
