"""One streaming pass over record lines: counts and length histograms for the tables, and a seeded
reservoir sample (raw lines only) for the browser. Memory is bounded by the sample, not the corpus.

The counts need a record's small fields (source, finish reason, token counts), not its text; most of
json.loads' time on a record goes to the many small objects of its provenance. A record that `tpt augment`
wrote begins `{"id": ..., "text": "...", "thinking": "...", "finish_reason": ...` and has its scalars
up to `"meta": `. The fast path steps over the id, text and thinking with the json module's own C
scanners (so it is at the top level of the object after them, whatever the strings hold), then parses
only the scalars up to "meta" (a stretch with no '{' or '['; the bytes `"meta": ` cannot occur inside a
JSON string, whose quotes are escaped), and, for a trajectory the loop guard stopped, the `loop` object
that ends the record. Anything else takes the slow path: the whole line through json.loads. Both give
the same Fields (tests/inspect/test_report.py checks it line by line and on hostile lines).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass, field
from json.decoder import scanstring
from typing import Any

from tpt.core.jsontypes import JSONObject

_SCAN = json.JSONDecoder().scan_once
"""The json module's C scanner: (value, end) of the JSON value at an offset (raises StopIteration)."""
_LOOP = '"loop": '
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
        except (ValueError, IndexError, StopIteration):
            f = None
        if f is not None:
            return f
    return _slow(raw, default_source)


def _real_quote(s: str, i: int) -> bool:
    """Is the quote at s[i] a real one (after an even number of backslashes), not an escaped one?"""
    j = i - 1
    while s[j] == "\\":
        j -= 1
    return (i - 1 - j) % 2 == 0


def _string_ends_at(s: str, p: int, k: int) -> bool:
    """Does the JSON string whose text starts at s[p] end with the quote at s[k - 1], and no earlier?"""
    if s[k - 1] != '"' or not _real_quote(s, k - 1):
        return False
    i = s.find('"', p, k - 1)
    while i != -1:  # the quotes inside are all escaped ones
        if _real_quote(s, i):
            return False
        i = s.find('"', i + 1, k - 1)
    return True


def _fast(s: str) -> Fields | None:
    if s[7] == '"':  # a string id (the usual) without a quote in it, else the C value scanner
        q = s.find('"', 8)
        if s[q - 1] == "\\":
            return None
        e = q + 1
    else:
        _, e = _SCAN(s, 7)
    if not s.startswith(_TEXT, e):
        return None
    # `, "thinking": "` cannot occur inside a JSON string (a quote there is escaped, and a space
    # never escapes one): the first one after the text's opening quote follows a real closing quote.
    p = e + len(_TEXT)
    k = s.find(_THINKING, p)
    if k < 0 or not _string_ends_at(s, p, k):
        return None
    c = s[p]
    if c == '"':
        return None  # empty text
    if c.isspace() or c == "\\" or not c.isascii():  # it may be whitespace only: read it to know
        text, _ = scanstring(s, p)
        if not text.strip():
            return None
    p = k + len(_THINKING)
    e = s.find(_FINISH, p)
    if e < 0 or not _string_ends_at(s, p, e):
        return None
    j = s.find(_META, e)
    seg = s[e + 2 : j].rstrip(", ")
    if j < 0 or "{" in seg or "[" in seg:
        return None
    obj, _ = _SCAN("{" + seg + "}", 0)
    doc, gen, src = obj.get("doc_tokens"), obj.get("completion_tokens"), obj.get("source")
    finish = obj.get("finish_reason")
    if type(doc) is not int or type(gen) is not int or type(src) is not str or not src:
        return None
    if finish is not None and type(finish) is not str:
        return None
    thinking = gen
    if finish == "repetition":  # the loop guard's stop: `loop` is the record's last key
        k = s.rfind(_LOOP)
        if k < j:
            return None
        loop, end = _SCAN(s, k + len(_LOOP))
        if s[end:].strip() != "}" or not isinstance(loop, dict) or type(loop.get("start_token")) is not int:
            return None
        thinking = loop["start_token"]
    intensity = None
    if s.find(_INTENSITY, j) > 0:  # a scored corpus: the score is meta's (parsed only then)
        meta, _ = _SCAN(s, j + len(_META))
        v = meta.get("reasoning_intensity") if isinstance(meta, dict) else None
        intensity = float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None
    return Fields(
        source=src,
        finish_reason=finish,
        doc_tokens=doc,
        thinking_tokens=thinking,
        generated_tokens=gen,
        prompt_tokens=_int(obj.get("prompt_tokens")),
        loop_stopped=finish == "repetition",
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


def fields_of_object(obj: JSONObject, default_source: str) -> Fields | str:
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

    def merge(self, other: Histogram) -> None:
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.n, self.total, self.max = self.n + other.n, self.total + other.total, max(self.max, other.max)

    def quantile(self, q: float) -> int:
        """The lower edge of the bin holding the q-quantile (0 when empty)."""
        target, seen = q * self.n, 0
        for i, c in enumerate(self.counts):
            seen += c
            if c and seen >= target:
                return BIN_EDGES[i]
        return 0


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

    def offer(self, group: tuple[str, str]) -> tuple[list[Any], int] | None:
        """Count one more item of the group; where to put it (the group's list and the slot, `len` of
        the list to append) when the sample takes it, else None (so the item need not be made)."""
        kept = self.groups.get(group)
        if kept is None:
            if len(self.groups) >= self.max_groups:
                group = ("(other)", "(other)")
            kept = self.groups.setdefault(group, [])
        self.seen[group] += 1
        n = self.seen[group]
        if n <= self.k:
            return kept, len(kept)
        j = int(self.rng.random() * n)
        return (kept, j) if j < self.k else None

    def add(self, group: tuple[str, str], item: Any) -> None:
        if (where := self.offer(group)) is not None:
            self.put(where, item)

    @staticmethod
    def put(where: tuple[list[Any], int], item: Any) -> None:
        kept, j = where
        if j == len(kept):
            kept.append(item)
        else:
            kept[j] = item

    def items(self) -> list[Any]:
        return [item for group in sorted(self.groups) for item in self.groups[group]]


_BIN = [bin_index(v) for v in range(1 << 16)]
"""bin_index of the lengths below 65536, looked up (the scan's inner loop)."""


class _Acc:
    """One source's running sums: [doc bin counts, thinking bin counts, doc total, thinking total,
    doc max, thinking max, prompt total, generated total, records with token counts]."""

    __slots__ = ("v",)

    def __init__(self) -> None:
        self.v: list[Any] = [[0] * len(BIN_EDGES), [0] * len(BIN_EDGES), 0, 0, 0, 0, 0, 0, 0]


class Tally:
    """The streaming counts of one directory's records. The loop adds to one counter of (source, finish
    reason, check result) and to its source's sums; the tables' views are derived from them."""

    def __init__(self) -> None:
        self.groups: Counter[tuple[str, str, str]] = Counter()
        self.unchecked_lines: Counter[tuple[str, str]] = Counter()
        """Lines a check rejected that hold no record ((source, reason)): in by_check, not by_source."""
        self.unreadable: Counter[str] = Counter()
        self.without_tokens = 0
        self.intensity: list[tuple[float, int]] = []
        self.intensity_seen = 0
        self._acc: dict[str, _Acc] = {}

    def add(self, f: Fields, check: str, rng: random.Random, scatter_k: int) -> None:
        self.groups[(f.source, f.finish_reason or "(none)", check)] += 1
        doc, think = f.doc_tokens, f.thinking_tokens
        if doc is None or think is None:
            self.without_tokens += 1
            return
        acc = self._acc.get(f.source)
        if acc is None:
            acc = self._acc[f.source] = _Acc()
        v = acc.v
        v[0][_BIN[doc] if doc < 65536 else bin_index(doc)] += 1
        v[1][_BIN[think] if think < 65536 else bin_index(think)] += 1
        v[2] += doc
        v[3] += think
        if doc > v[4]:
            v[4] = doc
        if think > v[5]:
            v[5] = think
        v[6] += f.prompt_tokens or 0
        v[7] += f.generated_tokens or 0
        v[8] += 1
        if f.intensity is not None:  # a uniform reservoir of (score, thinking tokens) for the scatter
            self.intensity_seen += 1
            point = (f.intensity, think)
            if len(self.intensity) < scatter_k:
                self.intensity.append(point)
            elif (j := int(rng.random() * self.intensity_seen)) < scatter_k:
                self.intensity[j] = point

    def add_line_without_record(self, source: str, check: str) -> None:
        self.unchecked_lines[(source, check)] += 1

    def _sum(self, i: int) -> int:
        return sum(a.v[i] for a in self._acc.values())

    @property
    def records(self) -> int:
        return sum(self.groups.values()) + sum(self.unchecked_lines.values())

    def _by(self, key: Any) -> Counter[str]:
        out: Counter[str] = Counter()
        for g, n in self.groups.items():
            out[key(g)] += n
        return out

    @property
    def by_source(self) -> Counter[str]:
        return self._by(lambda g: g[0])

    @property
    def by_finish(self) -> Counter[str]:
        return self._by(lambda g: g[1])

    @property
    def by_check(self) -> Counter[str]:
        out = self._by(lambda g: g[2])
        for (_, check), n in self.unchecked_lines.items():
            out[check] += n
        return out

    @property
    def check_by_source(self) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = {}
        for (source, _, check), n in self.groups.items():
            out.setdefault(source, Counter())[check] += n
        for (source, check), n in self.unchecked_lines.items():
            out.setdefault(source, Counter())[check] += n
        return out

    @property
    def loop_stopped(self) -> int:
        return self.by_finish.get("repetition", 0)

    @property
    def doc_tokens(self) -> int:
        return self._sum(2)

    @property
    def prompt_tokens(self) -> int:
        return self._sum(6)

    @property
    def generated_tokens(self) -> int:
        return self._sum(7)

    @property
    def lengths_by_source(self) -> dict[str, Lengths]:
        out = {}
        for source, a in self._acc.items():
            v = a.v
            out[source] = Lengths(
                doc=Histogram(counts=list(v[0]), n=v[8], total=v[2], max=v[4]),
                thinking=Histogram(counts=list(v[1]), n=v[8], total=v[3], max=v[5]),
            )
        return out

    @property
    def lengths(self) -> Lengths:
        out = Lengths()
        for per in self.lengths_by_source.values():
            out.doc.merge(per.doc)
            out.thinking.merge(per.thinking)
        return out
