"""The declarative records of an evaluation task: its data, its prompt templates, how it is scored."""

from __future__ import annotations

import string
from dataclasses import dataclass, field

from tpt.core.errors import ConfigError
from tpt.core.jsontypes import JSONObject
from tpt.evaluate.answers import check_compare
from tpt.evaluate.extract import parse_rule

READERS = ("fields", "gsm8k", "svamp", "math500", "mmlu", "arc")
FEWSHOT_ORDERS = ("first", "seeded")


@dataclass(frozen=True, kw_only=True, slots=True)
class DataSource:
    """A data file and the reader that turns its records into Examples."""

    path: str
    """Absolute path of a JSONL file (or a JSON array, when it ends in .json)."""
    reader: str = "fields"
    """`fields` for user files; the built-in benchmarks have their own (gsm8k, svamp, ...)."""
    question_field: str = "question"
    answer_field: str = "answer"
    id_field: str | None = None
    """Field holding a stable id; the 1-based line number when None."""

    def __post_init__(self) -> None:
        if self.reader not in READERS:
            raise ConfigError(f"unknown data reader {self.reader!r}; expected one of {', '.join(READERS)}")


@dataclass(frozen=True, kw_only=True, slots=True)
class FewShotSpec:
    """Where few-shot exemplars come from and how k of them are chosen for each question."""

    k: int = 0
    pool: DataSource | None = None
    """A file of exemplars (a train or dev split); None with `inline` or `holdout`."""
    inline: tuple[JSONObject, ...] = ()
    """Exemplar records written in the task itself, with the same fields as the data."""
    holdout: int = 0
    """When > 0: the first `holdout` items of a seeded shuffle of the task data are the exemplar pool and
    are never scored (for sets with a test split only, such as ARC-Challenge)."""
    order: str = "first"
    """`first`: pool order; `seeded`: a fixed shuffle with `seed`. Either way every question sees the
    same exemplars, except that an exemplar equal to the question (same id or text) is skipped."""
    seed: int = 1234
    match_field: str | None = None
    """Only exemplars whose field has the question's value (MMLU: same subject)."""

    def __post_init__(self) -> None:
        if self.k < 0:
            raise ConfigError(f"fewshot.k must be >= 0, got {self.k}")
        if self.order not in FEWSHOT_ORDERS:
            raise ConfigError(f"fewshot.order must be one of {', '.join(FEWSHOT_ORDERS)}, got {self.order!r}")
        sources = sum([self.pool is not None, bool(self.inline), self.holdout > 0])
        if self.k > 0 and sources != 1:
            raise ConfigError(
                f"fewshot.k = {self.k} needs exactly one exemplar source (file, inline or "
                f"holdout), got {sources}"
            )


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskSpec:
    """One task: data, prompt templates (str.format over a record's fields), stops, extraction, comparison."""

    name: str
    data: DataSource
    prompt: str
    """The question's text, e.g. "Question: {question}\\nAnswer:" or "{question} <think>"."""
    target: str = "{answer}"
    """An exemplar's answer text, appended to its prompt after `target_delimiter`."""
    preamble: str = ""
    """Text before the exemplars (formatted with the question's fields), e.g. an MMLU subject header."""
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    fewshot: FewShotSpec = field(default_factory=FewShotSpec)
    stop: tuple[str, ...] = ()
    """Generation ends at the first of these strings (cut from the text) or at end-of-sequence."""
    max_new_tokens: int = 256
    metrics: tuple[tuple[str, str], ...] = (("accuracy", "last_number"),)
    """(metric name, extraction rule) pairs; the first is the primary metric."""
    compare: str = "numeric"
    loglik_target: str = ""
    """When set (e.g. " {answer}."): also score the log-likelihood of this text, formatted with the
    question's fields and its gold answer, right after the prompt (metric `gold_loglik`, nats summed over
    its tokens, averaged over questions): a low-variance measure beside accuracy."""
    description: str = ""
    source: str = "builtin"

    def __post_init__(self) -> None:
        if not self.name or not all(c.isalnum() or c in "_-." for c in self.name):
            raise ConfigError(f"task name {self.name!r} must be non-empty letters, digits, '_', '-' or '.'")
        check_compare(self.compare)
        if self.max_new_tokens < 1:
            raise ConfigError(f"task {self.name}: max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not self.metrics:
            raise ConfigError(f"task {self.name}: needs at least one metric (an extraction rule)")
        for _, rule in self.metrics:
            parse_rule(rule)
        if any(not s for s in self.stop):
            raise ConfigError(f"task {self.name}: an empty stop string would stop at once")
        for label, template in (
            ("prompt", self.prompt),
            ("target", self.target),
            ("preamble", self.preamble),
            ("loglik_target", self.loglik_target),
        ):
            template_fields(template, where=f"task {self.name}: {label}")

    def as_config(self) -> JSONObject:
        """The settings that change scores, as plain JSON (for the result rows' `config`)."""
        return {
            "prompt": self.prompt,
            "target": self.target,
            "preamble": self.preamble,
            "target_delimiter": self.target_delimiter,
            "fewshot_delimiter": self.fewshot_delimiter,
            "num_fewshot": self.fewshot.k,
            "fewshot_order": self.fewshot.order,
            "fewshot_seed": self.fewshot.seed,
            "fewshot_holdout": self.fewshot.holdout,
            "stop": list(self.stop),
            "metrics": {name: rule for name, rule in self.metrics},
            "compare": self.compare,
            "data": self.data.path,
            **({"loglik_target": self.loglik_target} if self.loglik_target else {}),
        }


def template_fields(template: str, *, where: str) -> list[str]:
    """The `{field}` names a template uses; ConfigError on a malformed template."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigError(
            f"{where}: malformed template {template!r} ({exc}); write literal braces as '{{{{' and '}}}}'"
        ) from None
    names = [name for _, name, _, _ in parsed if name is not None]
    if any(n == "" or not n.isidentifier() for n in names):
        raise ConfigError(f"{where}: template {template!r} must name its fields, like {{question}}")
    return names
