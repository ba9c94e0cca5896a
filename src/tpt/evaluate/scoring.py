"""Score completions: extract each metric's answer, compare it with the gold one, average into metrics.

Metrics of a task (one result row each), all over the n scored questions:
- each named metric (`accuracy`, ...): mean over questions of the mean over samples of correctness, so
  with `--samples S` it is pass@1 averaged over S samples; greedy decoding is the case S = 1;
- `extraction_failed`: the share of samples where the primary rule found nothing (scored 0);
- `truncated`: the share of samples cut by max_new_tokens;
- `mean_generated_tokens`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tpt.core.jsontypes import JSONObject
from tpt.evaluate.answers import answers_match
from tpt.evaluate.engine import Completion
from tpt.evaluate.extract import extract, parse_rule
from tpt.evaluate.prompts import PreparedTask

EXTRA_METRICS = ("extraction_failed", "truncated", "mean_generated_tokens")


@dataclass(frozen=True, kw_only=True, slots=True)
class TaskScore:
    """A task's metric values over n questions, and one inspection record per (question, sample)."""

    n: int
    metrics: dict[str, float]
    samples: tuple[JSONObject, ...]


def score_task(prepared: PreparedTask, completions: Sequence[Sequence[Completion]]) -> TaskScore:
    task = prepared.task
    rules = [(name, parse_rule(rule)) for name, rule in task.metrics]
    primary = rules[0][0]
    sums = {name: 0.0 for name, _ in rules}
    failed = truncated = tokens = total = 0
    samples = []
    for example, prompt, outs in zip(prepared.examples, prepared.prompts, completions, strict=True):
        per_q = {name: 0 for name, _ in rules}
        for k, out in enumerate(outs):
            extracted = {name: extract(rule, out.text) for name, rule in rules}
            correct = {name: answers_match(extracted[name], example.gold, task.compare) for name, _ in rules}
            for name in per_q:
                per_q[name] += correct[name]
            failed += extracted[primary] is None
            truncated += out.finish_reason == "length"
            tokens += out.num_tokens
            total += 1
            samples.append(
                {
                    "task": task.name,
                    "id": example.id,
                    "sample": k,
                    "prompt": prompt,
                    "generation": out.text,
                    "finish_reason": out.finish_reason,
                    "generated_tokens": out.num_tokens,
                    "extracted": extracted,
                    "gold": example.gold,
                    "correct": correct,
                }
            )
        for name in sums:
            sums[name] += per_q[name] / len(outs)
    n = len(prepared.examples)
    metrics = {name: sums[name] / n for name in sums} if n else {name: 0.0 for name in sums}
    metrics["extraction_failed"] = failed / total if total else 0.0
    metrics["truncated"] = truncated / total if total else 0.0
    metrics["mean_generated_tokens"] = tokens / total if total else 0.0
    return TaskScore(n=n, metrics=metrics, samples=tuple(samples))
