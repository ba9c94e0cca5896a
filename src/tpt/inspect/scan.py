"""One streaming pass over record lines: counts and length histograms for the tables, and a seeded
reservoir sample (raw lines only) for the browser. Memory is bounded by the sample, not the corpus.

The counts need a record's small fields (source, finish reason, token counts), not its text; most of
json.loads' time on a record goes to the many small objects of its provenance. A record that `tpt augment`
wrote begins `{"id": ..., "text": "...", "thinking": "...", "finish_reason": ...` and has its scalars
up to `"meta": `. The fast path steps over the id, text and thinking with the json module's own
decoders (so it is at the top level of the object after them, whatever the strings hold), then parses
only the scalars up to "meta" (a stretch with no '{' or '['; the bytes `"meta": ` cannot occur inside
a JSON string, whose quotes are escaped). Anything else, or a record the loop guard stopped (its
`loop` field is needed), takes the slow path: the whole line through json.loads. Both give the same
Fields (tests/inspect/test_report.py checks it line by line).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from json.decoder import scanstring
from typing import Any

_DECODER = json.JSONDecoder()
_HEAD = b'{"id": '
_TEXT, _THINKING, _FINISH = ', "text": "', ', "thinking": "', ', "finish_reason": '
_META = '"meta": '
_INTENSITY = '"reasoning_intensity": '

BIN_EDGES: tuple[int, ...] = (0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512,
                              768, 1024, 1536, 2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576, 32768,
                              49152, 65536, 98304, 131072)  # fmt: skip
"""Lower edges of the length histogram's bins (tokens): two a doubling; the last bin is open."""


def bin_index(v: int) -> int:
    """The bin of a length: edges 0, 1, 2, 3, then 2^k and 1.5 * 2^k."""
    if v < 4:
        return max(v, 0)
    b = v.bit_length()  # 2^(b-1) <= v < 2^b
    i = 2 * b - 2 + ((v >> (b - 2)) & 1)
    return min(i, len(BIN_EDGES) - 1)


@dataclass(slots=True)
class Fields:
    """What the tables need of one record."""

    source: str
    finish_reason: str | None
    doc_tokens: int | None
    """None: the line carries no token counts (not a record `tpt augment` wrote)."""
    thinking_tokens: int | None
    """completion_tokens; for a trajectory the loop guard stopped, the tokens before the loop began."""
    generated_tokens: int | None
    prompt_tokens: int | None
    loop_stopped: bool
    intensity: float | None


def fields_of(raw: bytes, default_source: str) -> Fields | str:
    """The fields of one record line, or why it is not a record (malformed_json, missing_text, ...)."""
    if raw.startswith(_HEAD):
        try:
            f = _fast(raw.decode("utf-8"))
        except (ValueError, IndexError):
            f = None
        if f is not None:
            return f
    return _slow(raw, default_source)


def _fast(s: str) -> Fields | None:
    _, e = _DECODER.raw_decode(s, 7)
    if not s.startswith(_TEXT, e):
        return None
    text, e = scanstring(s, e + len(_TEXT))
    if not s.startswith(_THINKING, e) or not text.strip():
        return None
    _, e = scanstring(s, e + len(_THINKING))
    if not s.startswith(_FINISH, e):
        return None
    j = s.find(_META, e)
    seg = s[e + 2 : j].rstrip(", ")
    if j < 0 or "{" in seg or "[" in seg:
        return None
    obj = json.loads("{" + seg + "}")
    doc, gen, src = obj.get("doc_tokens"), obj.get("completion_tokens"), obj.get("source")
    finish = obj.get("finish_reason")
    if finish == "repetition" or type(doc) is not int or type(gen) is not int or type(src) is not str:
        return None
    if not src or (finish is not None and type(finish) is not str):
        return None
    intensity = None
    if s.find(_INTENSITY, j) > 0:  # a scored corpus: the score is meta's (parsed only then)
        meta, _ = _DECODER.raw_decode(s, j + len(_META))
        v = meta.get("reasoning_intensity") if isinstance(meta, dict) else None
        intensity = float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
    return Fields(
        source=src,
        finish_reason=finish,
        doc_tokens=doc,
        thinking_tokens=gen,
        generated_tokens=gen,
        prompt_tokens=_int(obj.get("prompt_tokens")),
        loop_stopped=False,
        intensity=intensity,
    )


def _slow(raw: bytes, default_source: str) -> Fields | str:
    try:
        obj = json.loads(raw)
    except UnicodeDecodeError:
        return "invalid_utf8"
    except ValueError:
        return "malformed_json"
    if not isinstance(obj, dict):
        return "not_an_object"
    return fields_of_object(obj, default_source)


def fields_of_object(obj: dict[str, Any], default_source: str) -> Fields | str:
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        return "missing_text"
    source = obj.get("source")
    finish = obj.get("finish_reason")
    gen = _int(obj.get("completion_tokens"))
    loop = obj.get("loop") if isinstance(obj.get("loop"), dict) else None
    thinking = gen
    if loop is not None and _int(loop.get("start_token")) is not None:
        thinking = loop["start_token"]
    meta = obj.get("meta") if isinstance(obj.get("meta"), dict) else {}
    intensity = obj.get("reasoning_intensity", meta.get("reasoning_intensity"))
    ok = isinstance(intensity, int | float) and not isinstance(intensity, bool)
    return Fields(
        source=source if isinstance(source, str) and source else default_source,
        finish_reason=finish if isinstance(finish, str) else None,
        doc_tokens=_int(obj.get("doc_tokens")),
        thinking_tokens=thinking,
        generated_tokens=gen,
        prompt_tokens=_int(obj.get("prompt_tokens")),
        loop_stopped=finish == "repetition",
        intensity=float(intensity) if ok else None,
    )


def _int(v: Any) -> int | None:
    return v if type(v) is int else None


@dataclass
class Histogram:
    """Counts of lengths in BIN_EDGES bins, with the exact count, sum and maximum."""

    counts: list[int] = field(default_factory=lambda: [0] * len(BIN_EDGES))
    n: int = 0
    total: int = 0
    max: int = 0

    def add(self, v: int) -> None:
        self.counts[bin_index(v)] += 1
        self.n += 1
        self.total += v
        if v > self.max:
            self.max = v

    def quantile(self, q: float) -> int:
        """The lower edge of the bin holding the q-quantile (0 when empty)."""
        target, seen = q * self.n, 0
        for i, c in enumerate(self.counts):
            seen += c
            if c and seen >= target:
                return BIN_EDGES[i]
        return 0

    def as_json(self) -> dict[str, Any]:
        return {"counts": self.counts, "n": self.n, "total": self.total, "max": self.max,
                "mean": round(self.total / self.n, 1) if self.n else None}  # fmt: skip


@dataclass
class Lengths:
    doc: Histogram = field(default_factory=Histogram)
    thinking: Histogram = field(default_factory=Histogram)


class Reservoir:
    """A seeded reservoir sample of `k` items per group (a group: source and check result), so that a
    rare source or a rare rejection reason is shown too. Groups beyond `max_groups` share one."""

    def __init__(self, k: int, seed: int, max_groups: int = 400) -> None:
        self.k, self.max_groups = k, max_groups
        self.rng = random.Random(seed)
        self.groups: dict[tuple[str, str], list[Any]] = {}
        self.seen: Counter[tuple[str, str]] = Counter()

    def offer(self, group: tuple[str, str], item: Any) -> None:
        if group not in self.groups:
            if len(self.groups) >= self.max_groups:
                group = ("(other)", "(other)")
            self.groups.setdefault(group, [])
        self.seen[group] += 1
        n, kept = self.seen[group], self.groups[group]
        if n <= self.k:
            kept.append(item)
        elif (j := int(self.rng.random() * n)) < self.k:
            kept[j] = item

    def items(self) -> list[Any]:
        return [item for group in sorted(self.groups) for item in self.groups[group]]


@dataclass
class Tally:
    """The streaming counts of one directory's records."""

    records: int = 0
    unreadable: Counter[str] = field(default_factory=Counter)
    by_source: Counter[str] = field(default_factory=Counter)
    by_finish: Counter[str] = field(default_factory=Counter)
    by_check: Counter[str] = field(default_factory=Counter)
    """kept / a rejection reason / 'not checked' (augment)."""
    check_by_source: dict[str, Counter[str]] = field(default_factory=dict)
    loop_stopped: int = 0
    without_tokens: int = 0
    doc_tokens: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    lengths: Lengths = field(default_factory=Lengths)
    lengths_by_source: dict[str, Lengths] = field(default_factory=dict)
    intensity: list[tuple[float, int]] = field(default_factory=list)
    intensity_seen: int = 0

    def add(self, f: Fields, check: str, rng: random.Random, scatter_k: int) -> None:
        self.records += 1
        self.by_source[f.source] += 1
        self.by_finish[f.finish_reason or "(none)"] += 1
        self.by_check[check] += 1
        self.check_by_source.setdefault(f.source, Counter())[check] += 1
        self.loop_stopped += f.loop_stopped
        if f.doc_tokens is None or f.thinking_tokens is None:
            self.without_tokens += 1
            return
        self.doc_tokens += f.doc_tokens
        self.prompt_tokens += f.prompt_tokens or 0
        self.generated_tokens += f.generated_tokens or 0
        per = self.lengths_by_source.get(f.source)
        if per is None:
            per = self.lengths_by_source[f.source] = Lengths()
        self.lengths.doc.add(f.doc_tokens)
        self.lengths.thinking.add(f.thinking_tokens)
        per.doc.add(f.doc_tokens)
        per.thinking.add(f.thinking_tokens)
        if f.intensity is not None:  # a uniform reservoir of (score, thinking tokens) for the scatter
            self.intensity_seen += 1
            point = (f.intensity, f.thinking_tokens)
            if len(self.intensity) < scatter_k:
                self.intensity.append(point)
            elif (j := int(rng.random() * self.intensity_seen)) < scatter_k:
                self.intensity[j] = point
