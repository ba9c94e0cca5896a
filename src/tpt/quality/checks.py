"""The trajectory checks: each flags a record with a named reason, judged a whole batch at a time.

Checks run in the order of `CHECKS`; a record gets the first reason that applies. The word-level
checks (repetition, copy, contamination) use word n-gram hashes from `ngrams.py`: words are lowercased
and split at whitespace and ASCII punctuation, so they need no tokenizer and give the same verdicts in
`tpt validate` and in `tpt pack`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tpt.core.errors import ConfigError
from tpt.core.registry import Registry
from tpt.formats.reading import RecordLine
from tpt.quality.contamination import EVAL_SETS, ContaminationIndex, load_index
from tpt.quality.ngrams import HashRuns, ngram_hashes, word_hashes

CHECKS: tuple[str, ...] = (
    "missing_thinking",  # no `thinking` field: nothing to pack in TPT mode (cannot be disabled)
    "truncated",  # finish_reason == "length": cut by the teacher's token limit
    "loop_stopped",  # finish_reason == "repetition": the loop guard cut it where a loop began
    "unclosed_think",  # more `<think>` than `</think>` inside the thinking
    "empty",  # thinking is empty or whitespace
    "too_short",  # fewer than min_thinking_words words
    "leaked_control",  # chat-template or control tokens written in the thinking
    "repetition",  # degenerate loop: many repeated word n-grams in the thinking
    "copy",  # the thinking mostly copies the document
    "contamination",  # long n-gram overlap with an evaluation set
)

THINKING_FILTERS: tuple[str, ...] = (
    "truncated",
    "loop_stopped",
    "unclosed_think",
    "empty",
    "too_short",
    "leaked_control",
    "repetition",
    "copy",
)
"""The checks that judge the quality of a trajectory. The paper filters nothing ([P] App. A.1), so
dropping records for these is a deviation (the capped trajectories are the most reasoning-heavy ones);
`tpt pack --paper-faithful` turns them off. leaked_control is one of them: a control string in the
thinking is the teacher writing its chat format, never a control token for the student (pack encodes
every text as text, control_tokens.py). Contamination is not: it is about the evaluation."""
REPORT_ONLY_CHECKS: tuple[str, ...] = ("contamination",)
"""Checks whose hits may be reported without dropping the record (CheckConfig.report_only)."""
PLUGIN_CHECKS: Registry[Callable[[RecordLine], str | None]] = Registry(
    "checks", {}, kind="check", hint="the built-in checks always run (--disable-check skips one)"
)
"""Third-party checks (entry points in group `tpt.checks`, docs/plugins.md), run only when named with
`--check NAME`, after the built-ins: function(record) -> why it fails (one line), or None (it passes)."""

# Control and chat-template tokens of common model families. `<|...|>` covers ChatML, Llama 3, GPT,
# Phi; the full-width form covers DeepSeek (`<｜end▁of▁sentence｜>`).
_CONTROL_PATTERNS = (
    r"<\|[^\s|<>]{1,64}\|>",
    r"<｜[^\s｜]{1,64}｜>",
    r"</?s>",
    r"\[/?INST\]",
    r"<</?SYS>>",
    r"<(?:start|end)_of_turn>",
    r"</?think>",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class CheckConfig:
    """Thresholds of the checks; the defaults are deliberately lenient (flag clear failures only)."""

    min_thinking_words: int = 20
    """A trajectory with fewer words is `too_short`."""
    repetition_ngram: int = 10
    """n of the word n-grams counted by the repetition check."""
    max_repetition: float = 0.3
    """Largest allowed fraction of the thinking's n-grams that repeat an earlier n-gram."""
    copy_ngram: int = 8
    """n of the word n-grams compared by the copy check."""
    max_copy: float = 0.5
    """Largest allowed fraction of the thinking's n-grams that also occur in the document."""
    contamination_ngram: int = 13
    """n of the word n-grams looked up in the evaluation sets (13: GPT-3's decontamination length)."""
    contamination_sets: tuple[str, ...] = tuple(EVAL_SETS)
    contamination_min_hits: int = 1
    """A record with at least this many n-grams found in an evaluation set is contaminated."""
    control_strings: tuple[str, ...] = ()
    """Extra literal strings that count as leaked control tokens in the thinking (tpt pack adds the
    student tokenizer's special tokens)."""
    disabled: frozenset[str] = field(default_factory=frozenset)
    """Names from CHECKS to skip (all but missing_thinking may be disabled)."""
    report_only: frozenset[str] = field(default_factory=frozenset)
    """Checks (from REPORT_ONLY_CHECKS) whose hits are reported, not dropped: the verdict says
    `drop=False` and the record is kept."""
    thinking: bool = True
    """Judge the trajectory too. False (the raw arm): only the document is judged (a leaked control
    token in it, contamination), and a record needs no thinking."""
    plugins: tuple[str, ...] = ()
    """Names from PLUGIN_CHECKS to run after the built-ins, in this order (`--check NAME`)."""

    def __post_init__(self) -> None:
        for name in self.plugins:
            PLUGIN_CHECKS.entry(name)  # an unknown one: one line, with a did-you-mean
        unknown = sorted(set(self.disabled) - set(CHECKS))
        if unknown:
            raise ConfigError(
                f"--disable-check: unknown check(s) {', '.join(unknown)}; choose from {', '.join(CHECKS[1:])}"
            )
        if bad := sorted(set(self.report_only) - set(REPORT_ONLY_CHECKS)):
            raise ConfigError(
                f"only {', '.join(REPORT_ONLY_CHECKS)} can be reported without dropping, not {', '.join(bad)}"
            )
        if "missing_thinking" in self.disabled:
            raise ConfigError(
                "--disable-check missing_thinking: a record without thinking cannot be "
                "packed as an augmented sample; use `tpt pack --mode raw --no-validate`"
            )
        for name in ("min_thinking_words", "contamination_min_hits"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        for name in ("repetition_ngram", "copy_ngram", "contamination_ngram"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        for name in ("max_repetition", "max_copy"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"--{name.replace('_', '-')} must be in [0, 1], got {getattr(self, name)}")

    def enabled(self, name: str) -> bool:
        return name not in self.disabled

    def as_dict(self) -> dict:
        return {
            "min_thinking_words": self.min_thinking_words,
            "repetition_ngram": self.repetition_ngram,
            "max_repetition": self.max_repetition,
            "copy_ngram": self.copy_ngram,
            "max_copy": self.max_copy,
            "contamination_ngram": self.contamination_ngram,
            "contamination_sets": list(self.contamination_sets),
            "contamination_min_hits": self.contamination_min_hits,
            "control_strings": list(self.control_strings),
            "disabled": sorted(self.disabled),
            "report_only": sorted(self.report_only),
            "thinking": self.thinking,
            **({"plugins": list(self.plugins)} if self.plugins else {}),  # older runs' configs stay equal
        }


def paper_faithful(config: CheckConfig) -> CheckConfig:
    """The paper's setting: no thinking filter drops a record; contamination is reported, not dropped.
    Leaked control tokens still drop a record (they would be encoded as control tokens)."""
    from dataclasses import replace

    return replace(
        config,
        disabled=frozenset(config.disabled | set(THINKING_FILTERS)),
        report_only=frozenset(config.report_only | set(REPORT_ONLY_CHECKS)),
    )


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why a record is rejected: a name from CHECKS and a human-readable detail."""

    reason: str
    detail: str
    drop: bool = True
    """False for a reported-only check: the record is kept, and counted as flagged."""


# Keys that sort by record first: the record index in the top 24 bits, 40 bits of the n-gram hash below.
# Two different n-grams of one record share a key with probability ~k^2 / 2^41 (k n-grams per record),
# negligible; one np.sort of these keys is several times faster than a lexsort or np.isin.
_OWNER_SHIFT = np.uint64(40)
MAX_BATCH = 1 << 24


def _record_keys(grams: HashRuns) -> np.ndarray:
    return np.sort((grams.owners().astype(np.uint64) << _OWNER_SHIFT) | (grams.values >> np.uint64(24)))


def _key_owners(keys: np.ndarray, num_records: int) -> np.ndarray:
    """How many of `keys` belong to each record, shape (num_records,)."""
    return np.bincount((keys >> _OWNER_SHIFT).astype(np.int64), minlength=num_records)


def repetition_fractions(thinking_words: HashRuns, n: int) -> np.ndarray:
    """Per text, the fraction of its word n-grams that repeat an earlier n-gram of the same text.

    Example, n=2: "a b a b a b" has n-grams ab ba ab ba ab; three repeat one seen before -> 3/5.
    """
    grams = ngram_hashes(thinking_words, n)
    keys = _record_keys(grams)
    repeats = _key_owners(keys[1:][keys[1:] == keys[:-1]], len(grams.counts))
    return repeats / np.maximum(grams.counts, 1)


def copy_fractions(document_words: HashRuns, thinking_words: HashRuns, n: int) -> np.ndarray:
    """Per record, the fraction of the thinking's word n-grams that also occur in its own document."""
    doc_keys = _record_keys(ngram_hashes(document_words, n))
    think = ngram_hashes(thinking_words, n)
    think_keys = _record_keys(think)
    if len(doc_keys) == 0:
        return np.zeros(len(think.counts))
    # Sorted needles make the binary searches walk the haystack in order (cache-friendly).
    pos = np.searchsorted(doc_keys, think_keys)
    pos[pos == len(doc_keys)] = 0
    hits = _key_owners(think_keys[doc_keys[pos] == think_keys], len(think.counts))
    return hits / np.maximum(think.counts, 1)


class Validator:
    """Judges batches of records against a CheckConfig (holds the compiled patterns and the index)."""

    def __init__(self, config: CheckConfig, index: ContaminationIndex | None = None) -> None:
        self.config = config
        patterns = [*_CONTROL_PATTERNS, *(re.escape(s) for s in config.control_strings if s)]
        self._control = re.compile("|".join(patterns))
        self._index = index
        if index is None and config.enabled("contamination") and config.contamination_sets:
            self._index = load_index(config.contamination_sets, config.contamination_ngram)

    def judge(self, records: Sequence[RecordLine]) -> list[Verdict | None]:
        """One verdict per record (None: kept), in order."""
        if len(records) > MAX_BATCH:
            return [
                v for i in range(0, len(records), MAX_BATCH) for v in self.judge(records[i : i + MAX_BATCH])
            ]
        verdicts = [self._judge_text(r) for r in records]
        pending = [i for i, v in enumerate(verdicts) if v is None]
        if pending:
            for i, verdict in zip(pending, self._judge_words([records[i] for i in pending]), strict=True):
                verdicts[i] = verdict
        for name in self.config.plugins:
            check = PLUGIN_CHECKS.get_or_raise(name)
            for i, record in enumerate(records):
                if verdicts[i] is None and (detail := check(record)):
                    verdicts[i] = Verdict(name, str(detail))
        return verdicts

    def _judge_words(self, records: Sequence[RecordLine]) -> list[Verdict | None]:
        """too_short, repetition, copy and contamination, each computed for the whole batch at once."""
        cfg = self.config
        think = word_hashes([(r.thinking or "") if cfg.thinking else "" for r in records])
        need_doc = cfg.enabled("copy") or cfg.enabled("contamination")
        doc = word_hashes([r.text for r in records]) if need_doc else think
        # (reason, failed: bool per record, detail of record j), in CHECKS order.
        failures: list[tuple[str, np.ndarray, Callable[[int], str]]] = []
        enabled = cfg.enabled if cfg.thinking else (lambda name: False)
        if enabled("too_short"):
            words = think.counts
            failures.append(
                (
                    "too_short",
                    words < cfg.min_thinking_words,
                    lambda j: f"{words[j]} words < --min-thinking-words {cfg.min_thinking_words}",
                )
            )
        if enabled("repetition"):
            rep = repetition_fractions(think, cfg.repetition_ngram)
            failures.append(
                (
                    "repetition",
                    rep > cfg.max_repetition,
                    lambda j: (
                        f"{rep[j]:.0%} of the thinking's {cfg.repetition_ngram}-grams repeat "
                        f"(--max-repetition {cfg.max_repetition})"
                    ),
                )
            )
        if enabled("copy"):
            cop = copy_fractions(doc, think, cfg.copy_ngram)
            failures.append(
                (
                    "copy",
                    cop > cfg.max_copy,
                    lambda j: (
                        f"{cop[j]:.0%} of the thinking's {cfg.copy_ngram}-grams are in the "
                        f"document (--max-copy {cfg.max_copy})"
                    ),
                )
            )
        if cfg.enabled("contamination") and self._index is not None:
            failures.append(self._contamination(doc, think))
        return [
            next(
                (
                    Verdict(name, detail(j), drop=name not in cfg.report_only)
                    for name, failed, detail in failures
                    if failed[j]
                ),
                None,
            )
            for j in range(len(records))
        ]

    def _contamination(self, doc: HashRuns, think: HashRuns) -> tuple[str, np.ndarray, Callable[[int], str]]:
        index, n = self._index, self.config.contamination_ngram
        assert index is not None
        doc_hits, doc_set = index.matches(ngram_hashes(doc, n))
        think_hits, think_set = index.matches(ngram_hashes(think, n))
        hits = doc_hits + think_hits

        def detail(j: int) -> str:
            where, set_id = ("document", doc_set[j]) if doc_hits[j] else ("thinking", think_set[j])
            return f"{hits[j]} {n}-gram(s) shared with {index.set_names[set_id]} (first in the {where})"

        return "contamination", hits >= max(self.config.contamination_min_hits, 1), detail

    def _judge_text(self, record: RecordLine) -> Verdict | None:
        """The checks that need no n-grams, in CHECKS order (too_short comes later, from word counts)."""
        cfg = self.config
        if not cfg.thinking:  # the raw arm: the document alone, and its content is data (no check)
            return None
        thinking = record.thinking or ""
        if record.thinking is None:
            return Verdict("missing_thinking", "no 'thinking' field")
        if cfg.enabled("truncated") and record.finish_reason == "length":
            return Verdict("truncated", "finish_reason is 'length': cut by the teacher's token limit")
        if cfg.enabled("loop_stopped") and record.finish_reason == "repetition":
            return Verdict(
                "loop_stopped", "finish_reason is 'repetition': the loop guard cut it where a loop began"
            )
        if cfg.enabled("unclosed_think") and thinking.count("<think>") > thinking.count("</think>"):
            return Verdict("unclosed_think", "'<think>' opened in the thinking and never closed")
        if cfg.enabled("empty") and not thinking.strip():
            return Verdict("empty", "the thinking is empty")
        # A document may hold control strings: content is data, encoded as text by the teacher's and
        # the student's tokenizers alike (control_tokens.py), so only the thinking is judged.
        if cfg.enabled("leaked_control") and (m := self._control.search(thinking)):
            return Verdict("leaked_control", f"the thinking contains {m.group(0)!r}")
        return None
