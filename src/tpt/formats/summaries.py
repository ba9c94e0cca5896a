"""What each stage's `run(config)` returns: one typed summary per stage, with the JSON it writes.

`to_json()` gives the summary as the stage writes it today (validate's summary.json, pack's stats.json;
train, sft, eval and the tokenizer write no summary file: theirs is the same facts as plain values).
Durations are `wall_seconds`; paths are strings in JSON. Light: dataclasses only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NotRequired, TypedDict

from tpt.core.jsontypes import JSONObject, JSONValue


def _plain(value: object) -> JSONValue:
    """A value as JSON: paths as strings, tuples as lists, numpy scalars as numbers."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    item = getattr(value, "item", None)  # a numpy scalar
    if callable(item):
        return _plain(item())
    return str(value)  # as write_json writes any other value


def _plain_object(value: Mapping[str, object]) -> JSONObject:
    return {str(k): _plain(v) for k, v in value.items()}


def _count(stats: Mapping[str, object], *keys: str) -> int:
    """stats[keys[0]][keys[1]]...: a count, or an error naming where it is missing or not a number."""
    value: object = stats
    for key in keys:
        value = value.get(key) if isinstance(value, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"stats {'.'.join(keys)} is {value!r}, not a number")
    return int(value)


class _Summary:
    __slots__ = ()

    def to_json(self) -> JSONObject:
        """The summary as JSON values, keyed by field name."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


class DuplicateListed(TypedDict):
    """One of the first repeated ids validate lists in summary.json."""

    file: str
    line: int
    id: JSONValue
    detail: str


class ResultRow(TypedDict):
    """One line of `tpt eval`'s results JSONL: one (model or checkpoint, task, metric)."""

    model: str
    checkpoint: str | None
    tokens_seen: int | None
    task: str
    metric: str
    value: float
    n: int
    over_context: NotRequired[int]
    """Prompts whose length plus max_new_tokens exceed the model's context (only when some do)."""
    config: JSONObject
    """The settings that change scores, and their `fingerprint`."""


class InspectedDir(TypedDict):
    """What `tpt inspect` read of one directory."""

    path: str
    kind: str
    """augment, validate or pack."""
    records: int
    """Record lines counted."""
    samples: int
    """Records sampled into the report."""


@dataclass(frozen=True, kw_only=True, slots=True)
class ValidateSummary(_Summary):
    """`tpt validate`: records judged, kept and rejected (summary.json)."""

    output: Path
    records: int
    kept: int
    rejected: int
    by_reason: dict[str, int]
    duplicate_ids: int = 0
    """Records whose id came before (counted under either policy)."""
    duplicate_policy: str = "keep-both"
    duplicates_listed: tuple[DuplicateListed, ...] = ()
    """The first repeats (file, line, id, detail), at most validate.stage.MAX_LISTED."""
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    """The record files read, in order."""
    checks: JSONObject = field(default_factory=dict)
    """The record checks' settings (quality.checks.CheckConfig.as_dict())."""
    wall_seconds: float = 0.0

    def to_json(self) -> JSONObject:
        """summary.json (the output directory is where it lies, so not in it)."""
        return {
            "records": self.records,
            "kept": self.kept,
            "rejected": self.rejected,
            "by_reason": _plain_object(self.by_reason),
            "duplicate_ids": {
                "count": self.duplicate_ids,
                "policy": self.duplicate_policy,
                "listed": [_plain_object(d) for d in self.duplicates_listed],
            },
            "by_source": _plain(self.by_source),
            "inputs": _plain(self.inputs),
            "checks": _plain(self.checks),
            "wall_seconds": self.wall_seconds,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class PackSummary(_Summary):
    """`tpt pack`: samples, rows and tokens written, and what was dropped (stats.json).

    The counts a caller reads most are fields; `stats` is the whole of stats.json (per-source counts,
    shares, the run's settings), which `to_json()` returns.
    """

    output: Path
    records_read: int
    records_skipped: int
    documents: int
    """Samples packed (raw and augmented)."""
    raw_samples: int
    augmented_samples: int
    rows: int
    seq_len: int
    total_tokens: int
    """Document, thinking and template tokens (padding not included)."""
    pad_tokens: int
    wall_seconds: float
    stats: JSONObject = field(default_factory=dict)

    @classmethod
    def from_stats(cls, output: Path, stats: Mapping[str, object]) -> PackSummary:
        wall = stats.get("wall_seconds")
        return cls(
            output=Path(output),
            records_read=_count(stats, "records", "read"),
            records_skipped=_count(stats, "records", "skipped"),
            documents=_count(stats, "documents"),
            raw_samples=_count(stats, "raw_samples"),
            augmented_samples=_count(stats, "augmented_samples"),
            rows=_count(stats, "rows"),
            seq_len=_count(stats, "seq_len"),
            total_tokens=_count(stats, "total_tokens"),
            pad_tokens=_count(stats, "pad_tokens"),
            wall_seconds=float(wall) if isinstance(wall, int | float) else 0.0,
            stats=_plain_object(stats),
        )

    def to_json(self) -> JSONObject:
        """stats.json."""
        return dict(self.stats)


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainSummary(_Summary):
    """`tpt train` and `tpt sft`: where the run stands after this call (the run directory holds the rest:
    manifest.json, metrics.jsonl, checkpoints/)."""

    stage: str
    """train or sft."""
    run_dir: Path
    steps: int
    """Optimizer steps done, this call and earlier ones of the run."""
    total_steps: int
    tokens_seen: int
    skipped_steps: int
    """Steps skipped as non-finite."""
    final_checkpoint: Path | None
    resumed_from: Path | None = None
    wall_seconds: float = 0.0
    """This call's wall time."""


@dataclass(frozen=True, kw_only=True, slots=True)
class EvalSummary(_Summary):
    """`tpt eval`: the result rows this call added (rows done by an earlier call are skipped)."""

    output: Path | None
    rows: tuple[ResultRow, ...]
    """The lines of the results file this call wrote, in order."""
    wall_seconds: float = 0.0

    def value(self, task: str, metric: str, model: str | None = None) -> list[float]:
        """The values of one task's metric, per checkpoint or model in order (of `model` only, if given)."""
        return [
            r["value"]
            for r in self.rows
            if r["task"] == task and r["metric"] == metric and (model is None or r["model"] == model)
        ]


@dataclass(frozen=True, kw_only=True, slots=True)
class CompareSummary(_Summary):
    """`tpt compare`: per task, each arm's factor against the baseline and its verdict (compare.json).

    `report` is the whole of compare.json (curves, intervals, settings), which `to_json()` returns.
    """

    output: Path
    baseline: str
    arms: tuple[str, ...]
    tasks: tuple[str, ...]
    verdicts: dict[str, dict[str, str]]
    """task -> contrast ("tpt-vs-raw") -> "gain" | "no measurable effect" | "loss" (of the factor)."""
    files: tuple[Path, ...] = ()
    """compare.json, compare.md and the plots written."""
    report: JSONObject = field(default_factory=dict)
    wall_seconds: float = 0.0

    def to_json(self) -> JSONObject:
        """compare.json."""
        return _plain_object(self.report)


@dataclass(frozen=True, kw_only=True, slots=True)
class ReproduceSummary(_Summary):
    """`tpt reproduce`: per world, each pre-registered contrast's verdict (summary.json).

    `report` is the whole of summary.json (per-item results, intervals, commands, times), which `to_json()`
    returns.
    """

    output: Path
    primary_world: str
    headline: str
    """The report's first line, generated from the pre-registered decision rule."""
    verdicts: dict[str, dict[str, str]]
    """world -> contrast ("tpt-vs-tpt-shuffled") -> "gain" | "no measurable effect" | "loss"."""
    preregistration_sha256: str
    report: JSONObject = field(default_factory=dict)
    wall_seconds: float = 0.0

    def to_json(self) -> JSONObject:
        """summary.json."""
        return _plain_object(self.report)


@dataclass(frozen=True, kw_only=True, slots=True)
class TokenizerSummary(_Summary):
    """`tpt tokenizer train`: what the BPE was learned from, and its size."""

    output: Path
    records: int
    skipped_lines: int
    characters: int
    vocab_size: int
    wall_seconds: float = 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class EstimateSummary(_Summary):
    """`tpt estimate`: what the sample measured and the projection to the corpus (estimate.json)."""

    corpus_items: int
    sample_items: int
    sample_seed: int
    measured: dict[str, int | float]
    """items, records, doc_tokens, prompt_tokens, completion_tokens, wall_seconds of the sample run."""
    projection: dict[str, int | float | None]
    """The projection to the whole corpus (estimate.projection.Projection's fields; None: not asked for)."""
    output: Path | None = None
    sample_run: AugmentSummary | None = None
    """The sample's augment summary (its summary.json)."""

    def to_json(self) -> JSONObject:
        """estimate.json."""
        return {
            "sample": {**_plain_object(self.measured), "seed": self.sample_seed},
            "projection": _plain_object(self.projection),
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class AugmentSummary(_Summary):
    """`tpt augment`: the outcomes of the whole output directory, and what this run added (summary.json)."""

    output: Path
    input_items: int
    """Input items read, to the end of the corpus (or of --limit)."""
    documents_done: int
    """Items with an outcome (a record or a failure)."""
    complete: bool
    """Every input item has an outcome and every shard is committed (else: re-run to continue)."""
    records: int
    failures: int
    """Items without a record (failures.jsonl's lines of them)."""
    failures_by_reason: dict[str, int]
    new_records_this_run: int
    new_failures_this_run: int
    retried_this_run: int
    """Failed generations of earlier runs done again (--retry-failed)."""
    doc_tokens: int
    prompt_tokens: int
    completion_tokens: int
    mean_completion_tokens: float
    mean_thinking_chars: float
    truncated_documents: int
    cut_by_length_limit: int
    stopped_by_loop_guard: int
    """Records the loop guard stopped (finish_reason 'repetition'; with --loop-policy drop they are
    'repetition' failures instead, in failures_by_reason)."""
    loop_guard_tokens: int
    """Tokens those stopped trajectories generated (included in completion_tokens)."""
    duplicate_ids: int
    """Documents whose id came before (kept or dropped by the policy)."""
    duplicate_ids_policy: str
    sampling_sent_this_run: list[JSONObject] = field(default_factory=list)
    """The sampling fields this run's new records were generated with (their provenance.sampling),
    each distinct set once."""
    sampling_refused_this_run: list[str] = field(default_factory=list)
    """Fields the server refused and this run's requests went without (its defaults applied)."""
    wall_seconds: float
    """This run's wall time."""
    executor: JSONObject = field(default_factory=dict)
    """What the executor adds to summary.json (the Ray executor: `ray`, the workers lost and redone)."""
    notices: dict[str, str] = field(default_factory=dict)
    """What this run learned about the teacher, by code: `stream_ignored` (the server answered streamed
    requests with one JSON body; the loop guard judged those trajectories after generation)."""
    thinking_budget: JSONObject | None = None
    """Under --thinking-budget (augment/budget.py): the plan (allocation, budget, documents,
    planned_tokens: the sum of the caps) and `spent`: the thinking tokens the committed records
    generated (their completion_tokens), which never exceeds the budget."""

    def to_json(self) -> JSONObject:
        """summary.json (the output directory is where it lies, so not in it)."""
        out = {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}
        del out["output"], out["executor"]
        return {**out, **_plain_object(self.executor)}


@dataclass(frozen=True, kw_only=True, slots=True)
class InspectSummary(_Summary):
    """`tpt inspect`: the report written, and what it read of each directory."""

    output: Path
    directories: tuple[InspectedDir, ...]
    records: int
    """Record lines counted, all directories together."""
    samples: int
    """Sampled records in the report's browser."""
    html_bytes: int
    wall_seconds: float = 0.0
