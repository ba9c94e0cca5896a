"""An index of the word n-grams of the evaluation questions tpt ships, to flag contaminated training text.

The index holds the hashed n-grams of the test questions of GSM8K, MATH-500, MMLU and ARC-Challenge
(bundled under `tpt/data/eval/`), each tagged with the set it came from. Questions shorter than n words
contribute nothing: an n-gram test cannot see them, which is why n defaults to 13 words (the GPT-3
decontamination length) rather than something longer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from tpt.core.errors import ConfigError, InputError
from tpt.quality.ngrams import HashRuns, ngram_hashes, word_hashes

_INDEX_VERSION = 1  # bump when the hashing in ngrams.py changes

# set name -> (file under tpt/data/eval/, field holding the question text)
EVAL_SETS: dict[str, tuple[str, str]] = {
    "gsm8k": ("gsm8k/test.jsonl", "question"),
    "math500": ("math500/test.jsonl", "problem"),
    "mmlu": ("mmlu/test.jsonl", "question"),
    "arc_challenge": ("arc_challenge/test.jsonl", "question"),
}


@dataclass(frozen=True, slots=True)
class ContaminationIndex:
    """Sorted unique n-gram hashes of evaluation questions, with the set each one came from."""

    n: int
    hashes: np.ndarray  # (k,) uint64, sorted, unique
    set_ids: np.ndarray  # (k,) uint8, index into `set_names`
    set_names: tuple[str, ...]
    prefilter: np.ndarray = field(init=False, repr=False)
    """(2**24,) bool: is any index hash's top 24 bits equal to this? Most corpus n-grams miss here,
    which skips a binary search over the whole index for them (30x faster on 2 cores)."""

    def __post_init__(self) -> None:
        prefilter = np.zeros(1 << 24, dtype=bool)
        prefilter[self.hashes >> np.uint64(40)] = True
        object.__setattr__(self, "prefilter", prefilter)

    def matches(self, ngrams: HashRuns) -> tuple[np.ndarray, np.ndarray]:
        """(hits per text, set id of each hit's first match per text or -1), both shape (num_texts,)."""
        num_texts = len(ngrams.offsets) - 1
        if len(self.hashes) == 0 or len(ngrams.values) == 0:
            return np.zeros(num_texts, dtype=np.int64), np.full(num_texts, -1, dtype=np.int64)
        candidates = np.flatnonzero(self.prefilter[ngrams.values >> np.uint64(40)])
        values = ngrams.values[candidates]
        pos = np.searchsorted(self.hashes, values)
        pos[pos == len(self.hashes)] = 0
        hit = self.hashes[pos] == values
        owners = ngrams.owners()[candidates[hit]]
        counts = np.bincount(owners, minlength=num_texts)
        first_set = np.full(num_texts, -1, dtype=np.int64)
        # Reversed assignment: the earliest hit of each text is written last and wins.
        first_set[owners[::-1]] = self.set_ids[pos[hit]][::-1]
        return counts, first_set


def _eval_file(name: str) -> Path:
    return Path(str(resources.files("tpt").joinpath("data/eval").joinpath(EVAL_SETS[name][0])))


def _questions(name: str) -> Iterator[str]:
    rel, field = EVAL_SETS[name]
    path = _eval_file(name)
    try:
        with path.open("r", encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)[field]
    except (OSError, json.JSONDecodeError, KeyError) as exc:
        raise InputError(f"bundled eval set {name} ({rel}) cannot be read: {exc}; reinstall tpt") from None


def load_index(set_names: Sequence[str], n: int, *, cache: bool = True) -> ContaminationIndex:
    """The index for these sets and n, from the tpt cache when an identical one was built before.

    Building all four sets takes about 0.3 s on 2 cores; every `tpt pack` run needs it, so it is cached
    (hashes are deterministic across processes) under `$TPT_CACHE/contamination/`.
    """
    if not cache:
        return build_index(set_names, n)
    from tpt.core.artifacts import fingerprint
    from tpt.core.hfmodel import cache_dir

    files = [_eval_file(s) for s in set_names if s in EVAL_SETS]
    key = fingerprint(
        {
            "v": _INDEX_VERSION,
            "n": n,
            "sets": list(set_names),
            "files": [[str(f), f.stat().st_size, f.stat().st_mtime_ns] for f in files],
        }
    )
    path = cache_dir() / "contamination" / f"index-{key}.npz"
    try:
        with np.load(path) as z:
            return ContaminationIndex(
                n=n, hashes=z["hashes"], set_ids=z["set_ids"], set_names=tuple(set_names)
            )
    except (OSError, KeyError, ValueError):
        pass  # not cached yet, or unreadable: rebuild
    index = build_index(set_names, n)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}.npz")
        np.savez(tmp, hashes=index.hashes, set_ids=index.set_ids)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache only costs the rebuild next time
    return index


def build_index(set_names: Sequence[str], n: int) -> ContaminationIndex:
    """Hash the n-grams of the named evaluation sets' questions."""
    unknown = [s for s in set_names if s not in EVAL_SETS]
    if unknown:
        raise ConfigError(
            f"unknown contamination set(s) {', '.join(unknown)}; choose from {', '.join(EVAL_SETS)}"
        )
    if n < 1:
        raise ConfigError(f"--contamination-ngram must be >= 1, got {n}")
    all_hashes, all_ids = [], []
    for set_id, name in enumerate(set_names):
        grams = ngram_hashes(word_hashes(list(_questions(name))), n).values
        all_hashes.append(grams)
        all_ids.append(np.full(len(grams), set_id, dtype=np.uint8))
    hashes = np.concatenate(all_hashes) if all_hashes else np.empty(0, np.uint64)
    ids = np.concatenate(all_ids) if all_ids else np.empty(0, np.uint8)
    # Keep the first set for an n-gram that occurs in several.
    hashes, first = np.unique(hashes, return_index=True)
    return ContaminationIndex(n=n, hashes=hashes, set_ids=ids[first], set_names=tuple(set_names))
