"""Prompt construction: choose few-shot exemplars (never the scored question) and render the prompt text.

Layout, as in lm-evaluation-harness:
`preamble + (exemplar prompt + target_delimiter + exemplar target + fewshot_delimiter) * k + question prompt`.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tpt.core.errors import ConfigError, InputError
from tpt.evaluate.records import Example, example_from_record, load_examples
from tpt.evaluate.spec import TaskSpec


@dataclass(frozen=True, kw_only=True, slots=True)
class PreparedTask:
    """A task ready to run: the examples to score and, aligned with them, their prompts."""

    task: TaskSpec
    examples: tuple[Example, ...]
    prompts: tuple[str, ...]
    num_available: int
    """Examples that could be scored (data minus held-out exemplars), before --limit."""


def _same_text(a: str, b: str) -> bool:
    return re.sub(r"\s+", " ", a).strip().lower() == re.sub(r"\s+", " ", b).strip().lower()


def render(template: str, fields: Mapping[str, Any], *, task: str, what: str) -> str:
    try:
        return template.format_map(fields)
    except KeyError as exc:
        raise InputError(
            f"task {task}: the {what} template uses the field {exc.args[0]!r}, which the records do not have "
            f"(fields: {', '.join(sorted(fields))})"
        ) from None
    except (IndexError, ValueError) as exc:
        raise ConfigError(f"task {task}: cannot render the {what} template ({exc})") from None


def split_pool(task: TaskSpec, data: list[Example]) -> tuple[list[Example], list[Example]]:
    """(examples that may be scored, ordered exemplar pool)."""
    fs = task.fewshot
    if fs.holdout > 0:
        if fs.holdout >= len(data):
            raise ConfigError(f"task {task.name}: fewshot.holdout={fs.holdout} leaves no example to score")
        order = list(range(len(data)))
        random.Random(fs.seed).shuffle(order)
        held = set(order[: fs.holdout])
        pool = [data[i] for i in order[: fs.holdout]]
        return [ex for i, ex in enumerate(data) if i not in held], pool
    if fs.k == 0:
        return data, []
    if fs.pool is not None:
        pool = load_examples(fs.pool)
    else:
        pool = [
            example_from_record(task.data, rec, where=f"task {task.name} inline exemplar")
            for rec in fs.inline
        ]
    if fs.order == "seeded":
        random.Random(fs.seed).shuffle(pool)
    return data, pool


def select_exemplars(task: TaskSpec, question: Example, pool: Sequence[Example]) -> list[Example]:
    """The first k pool items that are not the question itself (and share `match_field`, if set)."""
    fs = task.fewshot
    same_file = fs.holdout > 0 or (fs.pool is not None and Path(fs.pool.path) == Path(task.data.path))
    chosen: list[Example] = []
    for ex in pool:
        if len(chosen) == fs.k:
            break
        if fs.match_field and ex.fields.get(fs.match_field) != question.fields.get(fs.match_field):
            continue
        if same_file and ex.id == question.id:
            continue  # the same record of the same file
        if _same_text(ex.question, question.question):
            continue
        chosen.append(ex)
    if len(chosen) < fs.k:
        raise InputError(
            f"task {task.name}: only {len(chosen)} of {fs.k} exemplars available for question {question.id}"
            + (f" ({fs.match_field}={question.fields.get(fs.match_field)!r})" if fs.match_field else "")
        )
    return chosen


def render_prompt(task: TaskSpec, question: Example, exemplars: Sequence[Example]) -> str:
    parts = [render(task.preamble, question.fields, task=task.name, what="preamble")]
    for ex in exemplars:
        shot = render(task.prompt, ex.fields, task=task.name, what="prompt")
        target = render(task.target, ex.fields, task=task.name, what="target")
        parts.append(shot + task.target_delimiter + target + task.fewshot_delimiter)
    parts.append(render(task.prompt, question.fields, task=task.name, what="prompt"))
    return "".join(parts)


def prepare_task(task: TaskSpec, *, limit: int | None = None) -> PreparedTask:
    """Load a task's data, hold out exemplars, apply `limit` (the first N in file order), build prompts."""
    data = load_examples(task.data)
    if not data:
        raise InputError(f"task {task.name}: {Path(task.data.path)} holds no examples")
    scored, pool = split_pool(task, data)
    chosen = scored[:limit] if limit is not None else scored
    prompts = tuple(render_prompt(task, q, select_exemplars(task, q, pool)) for q in chosen)
    return PreparedTask(task=task, examples=tuple(chosen), prompts=prompts, num_available=len(scored))
