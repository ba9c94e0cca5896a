"""One streaming pass over record lines: counts and length histograms for the tables, and a seeded
reservoir sample (raw lines only) for the browser. Memory is bounded by the sample, not the corpus.

The counts need a record's small fields (source, finish reason, token counts), not its text. A record
that `tpt augment` wrote has them, in this order, between "thinking" and "meta": `"finish_reason": ...,
..., "source": "...", "meta": ...`. The fast path parses only that stretch of the line. It cannot be
fooled by a document: inside a JSON string a quote is always escaped (`\\"`), so the bytes
`"finish_reason": ` (a letter, then an unescaped quote, then a colon) only ever begin a key, and a
stretch that belongs to a nested object (unbalanced braces) does not parse and takes the slow path: the
whole line through `json.loads`. Any line the fast path is unsure of takes the slow path, so the counts
are those of a full parse. What neither path checks is the UTF-8 of the text the counts skip (a
record `tpt augment` wrote is valid UTF-8; a sampled line is parsed whole, and shown as unreadable if
it is not).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

_FINISH = b'"finish_reason": '
_META = b'"meta": '
_INTENSITY = b'"reasoning_intensity": '
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")

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
    """The fields of one record line, or why it is not a record (malformed_json, not_an_object, ...)."""
    i = raw.find(_FINISH)
    if i > 0:
        j = raw.find(_META, i)
        if j > 0:
            seg = raw[i:j].rstrip(b", ")
            if b"{" not in seg and b"[" not in seg:
                try:
                    obj = json.loads(b"{" + seg + b"}")
                except ValueError:
                    obj = None
                if obj is not None and obj.get("finish_reason") != "repetition":
                    doc, gen, src = obj.get("doc_tokens"), obj.get("completion_tokens"), obj.get("source")
                    if type(doc) is int and type(gen) is int and type(src) is str and src:
                        k = raw.find(_INTENSITY, j)
                        m = _NUMBER.match(raw, k + len(_INTENSITY)) if k > 0 else None
                        return Fields(
                            source=src,
                            finish_reason=obj["finish_reason"],
                            doc_tokens=doc,
                            thinking_tokens=gen,
                            generated_tokens=gen,
                            prompt_tokens=_int(obj.get("prompt_tokens")),
                            loop_stopped=False,
                            intensity=float(m.group()) if m else None,
                        )
    return _slow(raw, default_source)


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
