"""The two control arms of `tpt pack --control`: shuffled trajectories and filler thinking.

A TPT gain can come from the *pairing* of a thinking with its document, or only from training on more
reasoning-looking tokens. The controls keep everything but that pairing:

- `shuffled`: each document is packed with another document's trajectory. The pairing is a seeded
  derangement within buckets of similar trajectories (same source, same thinking length bucket), so
  the thinking tokens per source and their length distribution are kept, and no document keeps its own.
- `filler`: the thinking is replaced by content-free text of exactly as many student-tokenizer tokens.

Pure API (no files; `tpt pack` and `tpt reproduce` can both call it):

    thinking_bucket(n_tokens) -> int                    the length bucket: n.bit_length()
    derangement(keys, seed, docs=None) -> list[int]     partner[i]: the item whose trajectory item i gets
    Derangement(counts, seed, doc_of)                   the same plan, built from counts per key, for
        .partners(key, ranks) -> [(key, ranks), ...]    data that does not fit in memory (pack/spill.py)
    filler_unit(tokenizer) -> (unit, id)                the filler's repeated unit, checked for a tokenizer
    filler_text(tokenizer, n_tokens) -> str             text that tokenizes to exactly n_tokens tokens
    Filler(tokenizer).ids(n_tokens) -> np.ndarray       its ids, checked against the tokenizer

**Buckets.** An item's key is (source, length bucket, layer). The length bucket of a trajectory of n
student tokens is `n.bit_length()`: bucket b holds lengths in [2^(b-1), 2^b), so partners differ in
length by less than a factor of 2. The layer is the item's copy index among the items of one document
(0 for its first; `--weights 2` gives a document two augmented samples, layers 0 and 1): within one
layer every item is a different document, so a derangement of items is one of documents, and a
document with c samples still contributes its trajectory exactly c times.

**Merging (every group needs two items).** Deterministic, in this order:
1. Within one (source, layer), length buckets are taken shortest first and closed into a group as soon
   as it holds >= 2 items; a last group of 1 joins the group before it. So a bucket of one trajectory
   joins the next longer bucket of its source (the next shorter when it is the longest).
2. A (source, layer) with a single item overall: such items of one layer form one group across sources
   when there are >= 2 of them; a lone one joins the group of that layer (another source) whose length
   buckets are nearest to its own.
3. A layer with a single item overall (only a top layer: one document has more copies than any other)
   is spliced into the cycle of a layer-0 group (its own source and length first), at a place where
   neither neighbour is its own document. A corpus where this is impossible (one document holds more
   than half the augmented samples) is refused, as is a corpus with fewer than two.

**The derangement in constant memory.** A group of n items is ordered by a seeded pseudo-random
permutation P of [0, n) (a 6-round Feistel network over the next power of 4, with cycle walking: an
exact bijection computed from (seed, group) alone); item m gets the trajectory of the item after it in
that order, `P^-1((P(m) + 1) mod n)`. A cyclic shift by one of a random order is a derangement (one
n-cycle), so nothing is stored per item: memory is O(number of groups), and a streaming pack looks up
each item's partner as it comes (pack/spill.py keeps the trajectories on disk).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tpt.core.errors import ConfigError, InputError

CONTROLS = ("shuffled", "filler")
BUCKET_RULE = (
    "key (source, thinking length bucket, layer); length bucket = bit_length of the thinking's student "
    "tokens ([2^(b-1), 2^b)); layer = copy index within the document; a group of 1 joins the next longer "
    "bucket of its source (the next shorter when it is the longest), then the nearest of another source; "
    "derangement: cyclic shift by 1 of a seeded Feistel permutation per group"
)
_ROUNDS = 6
_U64 = np.uint64


def thinking_bucket(n_tokens: int) -> int:
    """The length bucket of a trajectory of n student tokens: [2^(b-1), 2^b) -> b (0 tokens -> 0)."""
    return int(n_tokens).bit_length()


@dataclass(frozen=True, order=True, slots=True)
class BucketKey:
    """What a trajectory may be exchanged within: its source, length bucket and layer (see the module doc)."""

    source: str
    length_bucket: int
    layer: int = 0


def _mix64(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        x = x ^ (x >> _U64(30))
        x = x * _U64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> _U64(27))
        x = x * _U64(0x94D049BB133111EB)
        return x ^ (x >> _U64(31))


class _Permutation:
    """A seeded bijection of [0, n): a Feistel network on 2h bits (4^h >= n) with cycle walking."""

    def __init__(self, n: int, key: bytes) -> None:
        self.n = n
        self.half = max(1, ((max(n, 2) - 1).bit_length() + 1) // 2)
        self.mask = _U64((1 << self.half) - 1)
        digest = hashlib.blake2b(key, digest_size=8 * _ROUNDS).digest()
        self.round_keys = [_U64(int.from_bytes(digest[8 * i : 8 * i + 8], "little")) for i in range(_ROUNDS)]

    def _f(self, i: int, r: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return _mix64(r + self.round_keys[i]) & self.mask

    def _encrypt(self, x: np.ndarray) -> np.ndarray:
        h = _U64(self.half)
        left, right = x >> h, x & self.mask
        for i in range(_ROUNDS):
            left, right = right, left ^ self._f(i, right)
        return (left << h) | right

    def _decrypt(self, y: np.ndarray) -> np.ndarray:
        h = _U64(self.half)
        left, right = y >> h, y & self.mask
        for i in reversed(range(_ROUNDS)):
            left, right = right ^ self._f(i, left), left
        return (left << h) | right

    def _walk(self, x: np.ndarray, step: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        y = step(np.asarray(x, dtype=np.uint64))
        out = y >= _U64(self.n)
        while out.any():
            y[out] = step(y[out])
            out = y >= _U64(self.n)
        return y.astype(np.int64)

    def forward(self, m: np.ndarray) -> np.ndarray:
        return self._walk(m, self._encrypt)

    def inverse(self, q: np.ndarray) -> np.ndarray:
        return self._walk(q, self._decrypt)


@dataclass(frozen=True, slots=True)
class _Extra:
    """An item of a single-item layer, spliced into a group's cycle after position `gap`."""

    key: BucketKey
    gap: int


class _Group:
    """Items of one or more keys, numbered in key order; cycled by a seeded permutation."""

    def __init__(self, keys: list[BucketKey], counts: Mapping[BucketKey, int], seed: int) -> None:
        self.keys = keys
        self.starts = [0]
        for key in keys:
            self.starts.append(self.starts[-1] + counts[key])
        self.n = self.starts[-1]
        self.perm = _Permutation(self.n, f"tpt-control-shuffled:{seed}:{keys[0]!r}".encode())
        self.extras: dict[int, _Extra] = {}  # gap position -> extra

    def member(self, key: BucketKey, ranks: np.ndarray) -> np.ndarray:
        return ranks + self.starts[self.keys.index(key)]

    def locate(self, members: np.ndarray) -> list[tuple[BucketKey, np.ndarray, np.ndarray]]:
        """(key, rank, where in `members`) for the members, by key."""
        where = np.searchsorted(np.asarray(self.starts[1:]), members, side="right")
        out = []
        for k in np.unique(where).tolist():
            sel = np.nonzero(where == k)[0]
            out.append((self.keys[k], members[sel] - self.starts[k], sel))
        return out

    def at(self, position: int) -> tuple[BucketKey, int]:
        [(key, rank, _)] = self.locate(self.perm.inverse(np.array([position % self.n])))
        return key, int(rank[0])


class Derangement:
    """The shuffled control's pairing, from the number of items per key (see the module doc).

    Items of a key are numbered 0, 1, ... (their rank, e.g. order of arrival); `doc_of(key, rank)` names
    an item's document and is only asked for the few items of single-item layers and their neighbours."""

    def __init__(
        self, counts: Mapping[BucketKey, int], seed: int, doc_of: Callable[[BucketKey, int], Hashable]
    ) -> None:
        counts = {k: int(v) for k, v in counts.items() if v > 0}
        self.seed = seed
        self.counts = counts
        total = sum(counts.values())
        if total < 2:
            raise InputError(
                f"the shuffled control pairs each document with another document's trajectory; the input "
                f"has {total} augmented sample(s) to pair (it needs at least 2)"
            )
        group_keys, lone = _plan_groups(counts)
        self.groups = [_Group(keys, counts, seed) for keys in group_keys]
        self._group_of: dict[BucketKey, _Group] = {k: g for g in self.groups for k in g.keys}
        self._extra_of: dict[BucketKey, tuple[_Group, int]] = {}
        for key in lone:
            self._splice(key, doc_of)

    def _splice(self, key: BucketKey, doc_of: Callable[[BucketKey, int], Hashable]) -> None:
        doc = doc_of(key, 0)
        layer0 = [g for g in self.groups if g.keys[0].layer == 0]
        own = [g for g in layer0 if any(k.source == key.source and k.length_bucket == key.length_bucket
                                        for k in g.keys)]  # fmt: skip
        for group in own + [g for g in layer0 if g not in own]:
            start = int.from_bytes(
                hashlib.blake2b(f"{self.seed}:{key!r}".encode(), digest_size=8).digest(), "little"
            )
            for step in range(group.n):
                gap = (start + step) % group.n
                if gap in group.extras:
                    continue
                if doc_of(*group.at(gap)) != doc and doc_of(*group.at(gap + 1)) != doc:
                    group.extras[gap] = _Extra(key, gap)
                    self._extra_of[key] = (group, gap)
                    return
        raise InputError(
            f"the shuffled control cannot give document {doc!r} (source {key.source!r}) another "
            "document's trajectory for each of its samples: it holds more than half of them; lower its "
            "--weights or pack without --control shuffled"
        )

    def partners(self, key: BucketKey, ranks: np.ndarray) -> list[tuple[BucketKey, np.ndarray, np.ndarray]]:
        """For items (key, ranks): (partner key, partner ranks, where in `ranks`), grouped by partner key.

        Item (key, r) packs the trajectory of item (partner key, partner rank)."""
        ranks = np.asarray(ranks, dtype=np.int64)
        if key in self._extra_of:
            group, gap = self._extra_of[key]
            pkey, prank = group.at(gap + 1)
            return [(pkey, np.full(len(ranks), prank, dtype=np.int64), np.arange(len(ranks)))]
        group = self._group_of[key]
        positions = group.perm.forward(group.member(key, ranks))
        out: list[tuple[BucketKey, np.ndarray, np.ndarray]] = []
        spliced = np.isin(positions, np.fromiter(group.extras, dtype=np.int64, count=len(group.extras)))
        for where in np.nonzero(spliced)[0].tolist():
            extra = group.extras[int(positions[where])]
            out.append((extra.key, np.zeros(1, dtype=np.int64), np.array([where])))
        rest = np.nonzero(~spliced)[0]
        if len(rest):
            following = group.perm.inverse((positions[rest] + 1) % group.n)
            out += [(k, r, rest[sel]) for k, r, sel in group.locate(following)]
        return out

    def facts(self) -> dict[str, Any]:
        """For stats.json: how many groups, how many keys were merged, the smallest group."""
        sizes = [g.n + len(g.extras) for g in self.groups]
        return {
            "seed": self.seed,
            "bucket_rule": BUCKET_RULE,
            "items": sum(self.counts.values()),
            "keys": len(self.counts),
            "groups": len(self.groups),
            "merged_keys": sum(len(g.keys) for g in self.groups if len(g.keys) > 1) + len(self._extra_of),
            "cross_source_groups": sum(len({k.source for k in g.keys}) > 1 for g in self.groups),
            "spliced_items": len(self._extra_of),
            "smallest_group": min(sizes),
        }


def _plan_groups(counts: Mapping[BucketKey, int]) -> tuple[list[list[BucketKey]], list[BucketKey]]:
    """Groups of keys (each >= 2 items, one document at most once) and the keys of single-item layers."""
    by_layer: dict[int, dict[str, list[BucketKey]]] = defaultdict(lambda: defaultdict(list))
    for key in sorted(counts):
        by_layer[key.layer][key.source].append(key)
    groups: list[list[BucketKey]] = []
    lone_layers: list[BucketKey] = []
    for layer in sorted(by_layer):
        sources = by_layer[layer]
        if sum(counts[k] for keys in sources.values() for k in keys) == 1:
            if layer == 0:  # one document has every augmented sample
                raise InputError(
                    "the shuffled control pairs each document with another document's trajectory; one "
                    f"document holds more than half of the augmented samples (all {sum(counts.values())})"
                )
            [[key]] = sources.values()
            lone_layers.append(key)
            continue
        layer_groups: list[list[BucketKey]] = []
        leftovers: list[BucketKey] = []
        for source in sorted(sources):
            closed: list[list[BucketKey]] = []
            current: list[BucketKey] = []
            for key in sources[source]:  # shortest first
                current.append(key)
                if sum(counts[k] for k in current) >= 2:
                    closed.append(current)
                    current = []
            if current and closed:
                closed[-1].extend(current)
            elif current:
                leftovers.extend(current)
            layer_groups.extend(closed)
        if len(leftovers) >= 2:
            layer_groups.append(leftovers)
        elif leftovers:
            [lone] = leftovers
            nearest = min(
                layer_groups,
                key=lambda g: min(abs(k.length_bucket - lone.length_bucket) for k in g),
            )
            nearest.append(lone)
            nearest.sort()
        groups.extend(layer_groups)
    return groups, lone_layers


def derangement(keys: Sequence[BucketKey], seed: int, docs: Sequence[Hashable] | None = None) -> list[int]:
    """partner[i]: the item whose trajectory item i gets, never one of its own document.

    `keys[i]` is item i's bucket (its layer is ignored: it is recomputed from `docs`); `docs[i]` names
    its document (default: every item its own). Items keep their order within a key, so the result is
    the one `tpt pack --control shuffled` gives the same items in the same order."""
    if docs is not None and len(docs) != len(keys):
        raise ConfigError(f"derangement: {len(keys)} keys but {len(docs)} docs")
    seen: dict[Hashable, int] = defaultdict(int)
    counts: dict[BucketKey, int] = defaultdict(int)
    item_key: list[BucketKey] = []
    ranks: list[int] = []
    index: dict[tuple[BucketKey, int], int] = {}
    for i, key in enumerate(keys):
        doc = docs[i] if docs is not None else i
        layered = BucketKey(key.source, key.length_bucket, seen[doc])
        seen[doc] += 1
        item_key.append(layered)
        ranks.append(counts[layered])
        index[layered, counts[layered]] = i
        counts[layered] += 1
    doc_of = (lambda k, r: docs[index[k, r]]) if docs is not None else (lambda k, r: index[k, r])
    plan = Derangement(counts, seed, doc_of)
    partner = [0] * len(keys)
    by_key: dict[BucketKey, list[int]] = defaultdict(list)
    for i, key in enumerate(item_key):
        by_key[key].append(i)
    for key, items in by_key.items():
        for pkey, pranks, where in plan.partners(key, np.asarray([ranks[i] for i in items])):
            for w, r in zip(where.tolist(), pranks.tolist(), strict=True):
                partner[items[w]] = index[pkey, r]
    return partner


# --- filler --------------------------------------------------------------------------------------

FILLER_UNITS = (" .", " ,", " -", " the")
"""Candidates for the filler's repeated unit, in order of preference (a period first: no content)."""
_PROBE = (1, 2, 3, 5, 8, 64, 257)


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer.encode(text, add_special_tokens=False).ids)


def filler_unit(tokenizer: Any) -> tuple[str, int]:
    """The first unit of FILLER_UNITS that the tokenizer encodes as one token, k times as k tokens (not
    the unknown token): (unit, its id). `tokenizer` is a `tokenizers.Tokenizer`."""
    unk = tokenizer.token_to_id("[UNK]") if hasattr(tokenizer, "token_to_id") else None
    for unit in FILLER_UNITS:
        ids = _ids(tokenizer, unit)
        if len(ids) != 1 or ids[0] == unk:
            continue
        if all(_ids(tokenizer, unit * k) == ids * k for k in _PROBE):
            return unit, ids[0]
    raise ConfigError(
        f"--control filler: the student tokenizer encodes none of {', '.join(map(repr, FILLER_UNITS))} "
        "as one token per repetition, so no filler of an exact token count can be written with it"
    )


def filler_text(tokenizer: Any, n_tokens: int) -> str:
    """Content-free text that the tokenizer encodes to exactly n_tokens tokens: the unit, n times."""
    unit, _ = filler_unit(tokenizer)
    return unit * n_tokens


class Filler:
    """Filler ids of any length for one tokenizer, each length checked against the tokenizer once.

    For the byte-level BPE tokenizers whose split is proven exact at a space before a non-space
    (pack/pieces.py), `unit * n` is n pre-tokens of one token each, for every n; the probes check it.
    For any other tokenizer every length used is encoded and compared the first time it is needed."""

    def __init__(self, tokenizer: Any) -> None:
        from tpt.pack.pieces import piece_encoder_for

        self.tokenizer = tokenizer
        self.unit, self.id = filler_unit(tokenizer)
        self.proven = piece_encoder_for(tokenizer) is not None and not self.unit[1:].isspace()
        self._checked: set[int] = set()

    def ids(self, n_tokens: int) -> np.ndarray:
        if not self.proven and n_tokens not in self._checked:
            got = _ids(self.tokenizer, self.unit * n_tokens)
            if got != [self.id] * n_tokens:
                raise ConfigError(
                    f"--control filler: the student tokenizer encodes {n_tokens} x {self.unit!r} as "
                    f"{len(got)} tokens, not {n_tokens}: no exact filler for this tokenizer"
                )
            self._checked.add(n_tokens)
        return np.full(n_tokens, self.id, dtype=np.uint32)

    def facts(self) -> dict[str, Any]:
        return {"unit": self.unit, "unit_id": self.id, "exact_by": "proof" if self.proven else "check"}
