"""The testbed corpus generator: documents at controlled reasoning intensity, and held-out test problems.

Every problem type's operand tuples are split once (by `world_seed`) into training tuples and held-out
tuples; documents use only training tuples and test problems only held-out ones, so no test problem shares
an instance (not even its numbers) with any training document. Documents come from one seeded sequence:
document i is the same in every corpus built from the same `seed`, whatever the corpus's length, so the
arms of an experiment read the same documents in the same order.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tpt.artifacts import write_atomic
from tpt.errors import ConfigError
from tpt.reproduce.problems import (
    COLORS,
    FACT,
    ITEMS,
    NAMES,
    ROOMS,
    THINGS,
    TYPES,
    Problem,
    answer,
    document,
    question,
)

DEFAULT_MIX = {
    FACT: 1.0,
    "add1": 1.5,
    "mul1": 1.5,
    "mul_add": 1.5,
    "add_mul": 1.5,
    "two_prod": 1.5,
    "chain3": 1.5,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class CorpusConfig:
    """What the generated corpus looks like."""

    mix: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIX))
    """Sampling weight of each problem type ('fact' = level 0)."""
    exercise_fraction: float = 0.3
    """Share of problem documents written as exercises (the question without its answer) in the TPT corpus."""
    heldout_fraction: float = 0.15
    """Share of each type's operand tuples kept out of all training documents."""
    world_seed: int = 1234
    """Seed of the train/held-out split (the same for every run seed, so all runs face the same test)."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.mix) - set(TYPES) - {FACT})
        if unknown:
            raise ConfigError(
                f"testbed mix: unknown problem types {unknown}; known: {[FACT, *TYPES]}"
            )
        if not self.mix or min(self.mix.values()) < 0 or sum(self.mix.values()) <= 0:
            raise ConfigError("testbed mix: weights must be >= 0 with a positive sum")
        if not 0 <= self.exercise_fraction < 1:
            raise ConfigError(f"exercise_fraction must be in [0, 1), got {self.exercise_fraction}")
        if not 0 < self.heldout_fraction < 1:
            raise ConfigError(f"heldout_fraction must be in (0, 1), got {self.heldout_fraction}")


@dataclass(frozen=True, kw_only=True, slots=True)
class World:
    """The split of each type's operand tuples into training and held-out tuples."""

    train: dict[str, tuple[tuple[int, ...], ...]]
    heldout: dict[str, tuple[tuple[int, ...], ...]]


def make_world(config: CorpusConfig) -> World:
    rng = random.Random(config.world_seed)
    train, heldout = {}, {}
    for name, ptype in TYPES.items():
        tuples = ptype.tuples()
        rng.shuffle(tuples)
        n_held = max(1, round(len(tuples) * config.heldout_fraction))
        heldout[name], train[name] = tuple(tuples[:n_held]), tuple(tuples[n_held:])
    return World(train=train, heldout=heldout)


def sample_problem(rng: random.Random, ptype: str, tuples: tuple[tuple[int, ...], ...]) -> Problem:
    if ptype == FACT:
        ops = (rng.randrange(len(COLORS)), rng.randrange(len(THINGS)), rng.randrange(len(ROOMS)))
        return Problem(type=FACT, operands=ops, name="", item="")
    return Problem(
        type=ptype, operands=rng.choice(tuples), name=rng.choice(NAMES), item=rng.choice(ITEMS)
    )


def document_stream(
    config: CorpusConfig, world: World, *, seed: int
) -> Iterator[tuple[Problem, bool]]:
    """Endless (problem, is_exercise) sequence; the i-th item depends only on (config, seed, i)."""
    rng = random.Random(f"testbed-docs:{seed}")
    types = [t for t, w in config.mix.items() if w > 0]
    weights = [config.mix[t] for t in types]
    while True:
        ptype = rng.choices(types, weights)[0]
        problem = sample_problem(rng, ptype, world.train.get(ptype, ()))
        is_exercise = (
            rng.random() < config.exercise_fraction
        )  # drawn for facts too: keeps streams aligned
        yield problem, is_exercise and ptype != FACT


def document_record(
    index: int, problem: Problem, *, exercise: bool, with_answer: bool
) -> dict[str, Any]:
    """A corpus record: the document text plus the structured problem that the procedural teacher reads."""
    return {
        "id": f"tb-{index:07d}",
        "text": document(problem, with_answer=with_answer),
        "domain": f"level-{problem.level}",
        "level": problem.level,
        "type": problem.type,
        "exercise": exercise and not with_answer,
        "problem": problem.as_dict(),
    }


def write_corpus(
    path: Path, config: CorpusConfig, world: World, *, seed: int, num_documents: int, answers: str
) -> dict[str, Any]:
    """Write the first `num_documents` documents of the seed's sequence as JSONL; return counts.

    answers='as_drawn': exercises stay without their answer (the TPT arm's corpus).
    answers='all': every problem states its answer (the raw arm's corpus: the same problems, nothing hidden).
    """
    if answers not in ("as_drawn", "all"):
        raise ConfigError(f"answers must be 'as_drawn' or 'all', got {answers!r}")
    lines, counts = [], Counter()
    stream = document_stream(config, world, seed=seed)  # endless: zip stops at num_documents
    for i, (problem, exercise) in zip(range(num_documents), stream, strict=False):
        with_answer = answers == "all" or not exercise
        rec = document_record(i, problem, exercise=exercise, with_answer=with_answer)
        counts[f"level-{problem.level}"] += 1
        counts["exercises"] += rec["exercise"]
        lines.append(json.dumps(rec, ensure_ascii=False))
    write_atomic(Path(path), "\n".join(lines) + "\n", fsync=False)
    return {"documents": num_documents, **dict(sorted(counts.items()))}


def heldout_problems(
    config: CorpusConfig, world: World, *, per_type: int, seed: int = 0
) -> list[dict[str, Any]]:
    """Held-out test problems: `per_type` per evaluated type (facts are not evaluated), held-out tuples only."""
    rng = random.Random(f"testbed-test:{seed}")
    rows = []
    for ptype in TYPES:
        if config.mix.get(ptype, 0) <= 0:
            continue
        for j in range(per_type):
            p = sample_problem(rng, ptype, world.heldout[ptype])
            rows.append(
                {
                    "id": f"test-{ptype}-{j:04d}",
                    "question": question(p),
                    "answer": str(answer(p)),
                    "level": p.level,
                    "type": ptype,
                    "problem": p.as_dict(),
                }
            )
    return rows


def exercise_records(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Test problems as exercise documents (no answer), for measuring a teacher's from-scratch accuracy."""
    return [
        {
            "id": r["id"],
            "text": r["question"],
            "domain": f"level-{r['level']}",
            "level": r["level"],
            "type": r["type"],
            "exercise": True,
            "problem": r["problem"],
        }
        for r in rows
    ]
