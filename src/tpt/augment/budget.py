"""A global thinking budget: how many thinking tokens a run may generate, and which documents get them.

`tpt augment --thinking-budget B --allocation uniform|difficulty` caps the run's generated thinking
tokens at B in all (`4M`), or at B per document on average (`2000/doc`, i.e. 2 * 10^9 per 10^6
documents). Every document gets its own cap, decided before any generation:

- `uniform`: every document the same cap, floor(B / N) (N: the input items the run covers), at most
  `--max-thinking-tokens`.
- `difficulty`: a document's cap grows with a cheap score of how much reasoning it holds (`score`):
  cap = clip(floor(lam * score), 1, --max-thinking-tokens), with lam the largest value for which the
  caps sum to at most B. Easy documents give their tokens to hard ones.

**The score** (`score(text, max_words)`): the document's words (at most `max_words`, what the teacher
will see after truncation) times (1 + 4 x its reasoning density), the density being the marks of
reasoning per word (a number, a math symbol, a connective: therefore, because, if, ...; at most 1). Two things the
paper and the test-time-scaling literature agree on: thinking grows with how much a document says (its
length) and with how reasoning-intensive it is (the paper's Fig. 4: math and physics documents get the
longest trajectories). It needs no model: ~0.3 ms of one core per 3 KB document, 3e-4 of
generating 2,000 tokens for it at 1,500 tokens/s (`benchmarks/thinking_budget.py`), so the
plan costs one extra read of the corpus, not a generation. It is a heuristic; the reproduce experiment
judges whether it beats uniform (docs/thinking-budget.md).

**Exactly once.** A cap is a pure function of (document text, plan), and the plan (N, lam, the score
histogram) is computed from the whole input before generation and written to `budget.json` in the
output directory once; a resumed run, a run with `--retry-failed` and every Ray worker read that plan
and give each document the same cap. The spent budget is what the committed records hold
(completion_tokens, each <= its cap), never a counter in memory, so it holds under kill -9, resume and
any executor: sum(completion_tokens) <= sum(caps) <= B. Tokens of a generation that failed after
retries are not in any record and are not counted (a server charged for them).

**Exactness of the plan without holding the corpus.** Scores are rounded up to the upper edge of one of
4096 log-spaced bins, and the plan keeps counts per bin (O(bins) memory at any corpus size). A cap is
computed from the rounded score, so the sum of caps the plan predicts is exactly the sum the run uses.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from tpt.core.errors import ConfigError
from tpt.core.jsontypes import JSONObject

ALLOCATIONS = ("uniform", "difficulty")
BINS = 4096
SCORE_MIN, SCORE_MAX = 1.0, 1e7
"""Scores are clipped to this range before binning (a document of 10^7 words is far past any cap)."""
DENSITY_WEIGHT = 4.0
_LOG_SPAN = math.log(SCORE_MAX / SCORE_MIN)
_SYMBOLS = re.compile(r"\d+|[=+\-*/^<>%√∑∫≤≥≠]")
_LETTERS = re.compile(r"[a-z]+")
CONNECTIVES = frozenset(
    "therefore because thus hence since if then implies suppose proof prove so which means equals total "
    "each per".split()
)


@dataclass(frozen=True, kw_only=True, slots=True)
class BudgetOptions:
    """`--thinking-budget` and `--allocation`: the budget as the user wrote it."""

    tokens: float
    """The budget: the run's total thinking tokens, or (per_document) a mean per document."""
    per_document: bool = False
    allocation: str = "uniform"

    def __post_init__(self) -> None:
        if not 0 < self.tokens < math.inf:
            raise ConfigError(f"--thinking-budget must be a finite number > 0, got {self.tokens:g}")
        if self.allocation not in ALLOCATIONS:
            raise ConfigError(
                f"--allocation must be one of {', '.join(ALLOCATIONS)}, got {self.allocation!r}"
            )

    def total(self, documents: int) -> int:
        """The run's budget in tokens, for a run over `documents` input items."""
        return int(self.tokens * documents) if self.per_document else int(self.tokens)

    def as_dict(self) -> JSONObject:
        return asdict(self)


_SUFFIX = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "b": 10**9, "t": 10**12}


def parse_budget(text: str, allocation: str = "uniform") -> BudgetOptions:
    """'4M' (the run's total), '2000/doc' (a mean per document), '2e9/1M' (per 10^6 documents)."""
    value, _, per = text.strip().lower().partition("/")
    per_document = bool(per)
    try:
        tokens = _number(value)
        if per:
            unit = 1.0 if per in ("doc", "document", "1") else _number(per)
            tokens /= unit
    except ValueError:
        raise ConfigError(
            f"--thinking-budget must be TOKENS (e.g. 4M: the run's total) or TOKENS/doc (e.g. 2000/doc: "
            f"a mean per document; 2e9/1M: per 10^6 documents), got {text!r}"
        ) from None
    return BudgetOptions(tokens=tokens, per_document=per_document, allocation=allocation)


def _number(text: str) -> float:
    match = re.fullmatch(r"([0-9.eE+]+)\s*([kmgbt]?)", text.strip())
    if not match:
        raise ValueError(text)
    return float(match.group(1)) * _SUFFIX[match.group(2)]


def score(text: str, max_words: int) -> float:
    """How much thinking a document calls for (module docstring): words x (1 + 4 x reasoning density)."""
    words = text.split(maxsplit=max_words)[:max_words]
    if not words:
        return SCORE_MIN
    # Marks of reasoning (a digit run, a math symbol, a connective) per word, at most 1.
    joined = " ".join(words)
    marks = len(_SYMBOLS.findall(joined)) + sum(w in CONNECTIVES for w in _LETTERS.findall(joined.lower()))
    return len(words) * (1.0 + DENSITY_WEIGHT * min(1.0, marks / len(words)))


def score_bin(value: float) -> int:
    clipped = min(max(value, SCORE_MIN), SCORE_MAX)
    return min(BINS - 1, math.ceil(math.log(clipped / SCORE_MIN) / _LOG_SPAN * (BINS - 1)))


def bin_score(index: int) -> float:
    """The upper edge of a bin: the score every document in it is planned and capped with."""
    return SCORE_MIN * math.exp(index / (BINS - 1) * _LOG_SPAN)


@dataclass(frozen=True, kw_only=True, slots=True)
class Plan:
    """Each document's cap, decided before generation (written to budget.json; module docstring)."""

    allocation: str
    budget: int
    """The run's total thinking tokens (BudgetOptions.total)."""
    documents: int
    max_cap: int
    """--max-thinking-tokens: no document gets more."""
    max_words: int
    """Words of a document the score reads (the teacher's --max-doc-tokens)."""
    scale: float
    """uniform: the cap itself; difficulty: lam, cap = floor(lam * rounded score)."""
    planned_tokens: int
    """The sum of every document's cap: <= budget."""

    def cap(self, text: str) -> int:
        if self.allocation == "uniform":
            return int(self.scale)
        return self._cap_of_bin(score_bin(score(text, self.max_words)))

    def beyond(self, item: Any) -> str:
        """Why an input item past the planned documents stops the run (its cap would break the budget)."""
        return (
            f"{item.file}:{item.line}: input item {item.index + 1}, but budget.json planned the thinking "
            f"budget for {self.documents} items: the corpus grew since the plan; augment the new documents "
            "into a new --output"
        )

    def score_of(self, text: str) -> float:
        return round(bin_score(score_bin(score(text, self.max_words))), 3)

    def _cap_of_bin(self, index: int) -> int:
        return _cap(self.scale, bin_score(index), self.max_cap)

    def as_dict(self) -> JSONObject:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: JSONObject) -> Plan:
        return cls(**data)


def _cap(scale: float, value: float, max_cap: int) -> int:
    return max(1, min(max_cap, math.floor(scale * value)))


def make_plan(options: BudgetOptions, texts: Iterable[str | None], *, max_cap: int, max_words: int) -> Plan:
    """The plan for a run over `texts` (every input item, None for one without usable text: it still
    counts as a document of the run, as a per-document budget is per input item, and gets the least cap)."""
    counts = [0] * BINS
    documents = 0
    scored = options.allocation != "uniform"  # uniform needs only the count
    for text in texts:
        documents += 1
        if scored:
            counts[score_bin(score(text, max_words) if text else SCORE_MIN)] += 1
    if documents == 0:
        raise ConfigError("--thinking-budget: the input holds no documents to plan a budget for")
    budget = options.total(documents)
    if budget < documents:
        raise ConfigError(
            f"--thinking-budget {budget} tokens is less than one thinking token for each of the "
            f"{documents} documents"
        )
    if options.allocation == "uniform":
        cap = min(max_cap, budget // documents)
        return Plan(
            allocation="uniform",
            budget=budget,
            documents=documents,
            max_cap=max_cap,
            max_words=max_words,
            scale=float(cap),
            planned_tokens=cap * documents,
        )
    occupied = [(bin_score(i), n) for i, n in enumerate(counts) if n]

    def planned(scale: float) -> int:
        return sum(n * _cap(scale, value, max_cap) for value, n in occupied)

    low, high = 0.0, max_cap / occupied[0][0] + 1.0  # at high every document is at max_cap
    if planned(high) <= budget:
        low = high
    else:
        for _ in range(100):  # bisection: planned() is monotone in the scale
            mid = (low + high) / 2
            if planned(mid) <= budget:
                low = mid
            else:
                high = mid
    return Plan(
        allocation="difficulty",
        budget=budget,
        documents=documents,
        max_cap=max_cap,
        max_words=max_words,
        scale=low,
        planned_tokens=planned(low),
    )


PLAN_FILE = "budget.json"


def load_or_make_plan(cfg: Any, files: list[Any]) -> Plan | None:
    """The run's plan: budget.json when an earlier run of this output wrote it for the same budget and
    --limit (no second read of the corpus), else made from one pass over the input and written once."""
    options: BudgetOptions | None = cfg.thinking_budget
    if options is None:
        return None
    from tpt.core.artifacts import read_json, write_json
    from tpt.formats.corpus import iter_items

    path = cfg.output / PLAN_FILE
    wanted = {"options": options.as_dict(), "limit": cfg.limit}
    if path.exists():
        saved = read_json(path)
        if {k: saved.get(k) for k in wanted} == wanted:
            return Plan.from_dict(saved["plan"])
        if not cfg.overwrite_config:
            raise ConfigError(
                f"{path}: planned for --thinking-budget {saved.get('options')} and --limit "
                f"{saved.get('limit')}; this run asks {options.as_dict()} and --limit {cfg.limit}. A budget is "
                "planned for the whole run before generation: keep them, or use a new --output "
                "(--overwrite-config plans again; records already written keep their caps)"
            )

    def texts() -> Iterable[str | None]:
        for n, item in enumerate(iter_items(files)):
            if cfg.limit is not None and n >= cfg.limit:
                return
            try:
                value = item.parse().get(cfg.text_field)
            except ValueError:
                value = None
            yield value if isinstance(value, str) else None

    plan = make_plan(options, texts(), max_cap=cfg.sampling.max_tokens, max_words=cfg.max_doc_tokens)
    write_json(path, {**wanted, "plan": plan.as_dict()})
    return plan
