"""The testbed corpus generator: documents at controlled reasoning intensity, and held-out test problems.

Every problem type's operand tuples are split once (by `world_seed`) into training tuples and held-out
tuples; documents use only training tuples and test problems only held-out ones, so no test problem's
operand tuple appears in a training document of its type. Single numbers do recur (the same operands
occur in other combinations, and a tuple held out for one type may be a training tuple of another type).
Documents come from one seeded sequence: document i is the same in every corpus built from the same `seed`, whatever the corpus's length.

The experiment's training world is a finite *pool*: the first `pool_documents` documents of the sequence
of `world_seed`, the same for every arm and every run seed (the seed sets the model's init and the data
order). Every arm trains on the pool for as many epochs as its token budget takes, so every arm sees the
same documents, and a real LLM teacher can write one trajectory per pool document within a CPU budget.
"""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tpt.core.artifacts import write_atomic
from tpt.core.errors import ConfigError
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
    worked_fraction: float = 0.5
    """Share of problem documents that show their working inline (textbook worked examples); the same
    documents in every arm, so the raw arm sees worked reasoning as a textbook-like corpus holds it."""
    exercise_fraction: float = 0.3
    """Share of problem documents written as exercises (no answer, the thinking solves it), in the
    exercise-ablation arm's corpus only; every other corpus states every answer, as natural text does."""
    heldout_fraction: float = 0.15
    """Share of each type's operand tuples kept out of all training documents."""
    min_heldout_per_level: int = 50
    """At least this many distinct held-out computations per level (level 1 has only 72 tuples, so more
    than heldout_fraction of them is held out there)."""
    pool_documents: int = 1000
    """Distinct documents of the training world (every arm trains on them, for as many epochs as its
    budget takes)."""
    world_seed: int = 1234
    """Seed of the train/held-out split and of the pool (the same for every run seed)."""
    test_seed: int = 0
    """Seed of the held-out test set's draw from the held-out tuples (`tpt reproduce --test-seed`)."""

    def __post_init__(self) -> None:
        unknown = sorted(set(self.mix) - set(TYPES) - {FACT})
        if unknown:
            raise ConfigError(f"testbed mix: unknown problem types {unknown}; known: {[FACT, *TYPES]}")
        if not self.mix or min(self.mix.values()) < 0 or sum(self.mix.values()) <= 0:
            raise ConfigError("testbed mix: weights must be >= 0 with a positive sum")
        for name in ("worked_fraction", "exercise_fraction"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0 < self.heldout_fraction < 1:
            raise ConfigError(f"heldout_fraction must be in (0, 1), got {self.heldout_fraction}")
        if self.pool_documents < 1 or self.min_heldout_per_level < 1:
            raise ConfigError("pool_documents and min_heldout_per_level must be >= 1")


@dataclass(frozen=True, kw_only=True, slots=True)
class World:
    """The split of each type's operand tuples into training and held-out tuples."""

    train: dict[str, tuple[tuple[int, ...], ...]]
    heldout: dict[str, tuple[tuple[int, ...], ...]]


def make_world(config: CorpusConfig) -> World:
    """Split each type's tuples: heldout_fraction of them, or more where a level would otherwise have fewer
    than min_heldout_per_level distinct held-out computations (spread evenly over the level's types)."""
    rng = random.Random(config.world_seed)
    by_level: dict[int, list[str]] = {}
    for name, ptype in TYPES.items():
        by_level.setdefault(ptype.level, []).append(name)
    train, heldout = {}, {}
    for names in by_level.values():
        want_each = -(-config.min_heldout_per_level // len(names))
        for name in names:
            tuples = TYPES[name].tuples()
            rng.shuffle(tuples)
            n_held = max(1, round(len(tuples) * config.heldout_fraction), want_each)
            n_held = min(n_held, len(tuples) - 1)
            heldout[name], train[name] = tuple(tuples[:n_held]), tuple(tuples[n_held:])
    return World(train=train, heldout=heldout)


def sample_problem(rng: random.Random, ptype: str, tuples: tuple[tuple[int, ...], ...]) -> Problem:
    if ptype == FACT:
        ops = (rng.randrange(len(COLORS)), rng.randrange(len(THINGS)), rng.randrange(len(ROOMS)))
        return Problem(type=FACT, operands=ops, name="", item="")
    return Problem(type=ptype, operands=rng.choice(tuples), name=rng.choice(NAMES), item=rng.choice(ITEMS))


@dataclass(frozen=True, kw_only=True, slots=True)
class PoolDocument:
    """One document of the training pool: its problem, and how it is written."""

    index: int
    problem: Problem
    worked: bool
    """Shows its working inline (a worked example), in every arm."""
    exercise: bool
    """Written without its answer in the exercise-ablation corpus (elsewhere it states its answer)."""


def document_stream(config: CorpusConfig, world: World, *, seed: int) -> Iterator[PoolDocument]:
    """Endless document sequence; the i-th item depends only on (config, seed, i)."""
    rng = random.Random(f"testbed-docs:{seed}")
    types = [t for t, w in config.mix.items() if w > 0]
    weights = [config.mix[t] for t in types]
    for i in itertools.count():
        ptype = rng.choices(types, weights)[0]
        problem = sample_problem(rng, ptype, world.train.get(ptype, ()))
        # Exercises come from the documents that are not worked examples (a worked solution is an answer),
        # drawn so that they are exercise_fraction of all problem documents.
        worked = rng.random() < config.worked_fraction
        exercise = rng.random() < min(1.0, config.exercise_fraction / (1.0 - config.worked_fraction))
        is_problem = ptype != FACT
        yield PoolDocument(index=i, problem=problem, worked=worked and is_problem,
                           exercise=exercise and is_problem and not worked)  # fmt: skip


def pool(config: CorpusConfig, world: World) -> list[PoolDocument]:
    """The training world: the first `pool_documents` documents of the world seed's sequence."""
    return list(
        itertools.islice(document_stream(config, world, seed=config.world_seed), config.pool_documents)
    )


CORPORA = ("raw", "shuffled", "exercises")
"""raw: every document as written (the raw arm's corpus, also what every TPT teacher reads);
shuffled: the same documents, each carrying another pool document's problem for the teacher (same
thinking tokens, wrong content); exercises: the exercise-ablation corpus."""


def document_record(
    doc: PoolDocument, *, exercise: bool, teacher_problem: Problem | None = None
) -> dict[str, Any]:
    """A corpus record: the document text plus the structured problem that the procedural teacher reads."""
    problem = doc.problem
    return {
        "id": f"tb-{doc.index:07d}",
        "text": document(problem, with_answer=not exercise, worked=doc.worked),
        "domain": f"level-{problem.level}",
        "level": problem.level,
        "type": problem.type,
        "worked": doc.worked,
        "exercise": exercise,
        "problem": (teacher_problem or problem).as_dict(),
    }


def shuffled_partner(docs: list[PoolDocument], *, seed: int) -> list[int]:
    """A seeded derangement: docs[i] gets the thinking of docs[partner[i]], never its own, and never a
    document with the same problem (a repeated computation would pair a document with its own content)."""
    n = len(docs)
    if n < 2:
        raise ConfigError("the shuffled control needs at least 2 documents")
    rng = random.Random(f"testbed-shuffle:{seed}")
    order = list(range(n))
    rng.shuffle(order)
    partner = [0] * n
    for k, i in enumerate(order):  # a cyclic shift of a random order: a derangement
        partner[i] = order[(k + 1) % n]
    key = [(d.problem.type, d.problem.operands) for d in docs]
    for i in range(n):  # repair the rare pair that shares a computation by swapping with a neighbour
        if key[partner[i]] == key[i]:
            j = next((j for j in order if key[partner[j]] != key[i] and key[partner[i]] != key[j] and j != i
                      and partner[j] != i), None)  # fmt: skip
            if j is None:
                raise ConfigError("the shuffled control needs documents of at least two computations")
            partner[i], partner[j] = partner[j], partner[i]
    return partner


def write_corpus(path: Path, docs: list[PoolDocument], *, kind: str, seed: int = 0) -> dict[str, Any]:
    """Write the pool as one arm's corpus (a JSONL of records for `tpt augment`); return counts."""
    if kind not in CORPORA:
        raise ConfigError(f"corpus kind must be one of {', '.join(CORPORA)}, got {kind!r}")
    partner = shuffled_partner(docs, seed=seed) if kind == "shuffled" else None
    lines, counts = [], Counter()
    for i, doc in enumerate(docs):
        exercise = kind == "exercises" and doc.exercise
        other = docs[partner[i]].problem if partner is not None else None
        rec = document_record(doc, exercise=exercise, teacher_problem=other)
        counts[f"level-{doc.problem.level}"] += 1
        counts["exercises"] += exercise
        counts["worked"] += doc.worked
        lines.append(json.dumps(rec, ensure_ascii=False))
    write_atomic(Path(path), "\n".join(lines) + "\n", fsync=False)
    return {"documents": len(docs), **dict(sorted(counts.items()))}


def heldout_problems(
    config: CorpusConfig, world: World, *, per_level: int, seed: int = 0
) -> list[dict[str, Any]]:
    """Held-out test problems, `per_level` per evaluated level (facts are not evaluated), spread evenly
    over the level's types and cycling through each type's held-out tuples in a seeded order, so a level
    with enough held-out tuples tests `per_level` distinct computations."""
    rng = random.Random(f"testbed-test:{seed}")
    by_level: dict[int, list[str]] = {}
    for ptype in TYPES:
        if config.mix.get(ptype, 0) > 0:
            by_level.setdefault(TYPES[ptype].level, []).append(ptype)
    rows = []
    for level, names in sorted(by_level.items()):
        for k, ptype in enumerate(names):
            n = per_level // len(names) + (k < per_level % len(names))
            tuples = list(world.heldout[ptype])
            rng.shuffle(tuples)
            for j in range(n):
                ops = tuples[j % len(tuples)]
                p = Problem(type=ptype, operands=ops, name=rng.choice(NAMES), item=rng.choice(ITEMS))
                rows.append({"id": f"test-{ptype}-{j:04d}", "question": question(p), "answer": str(answer(p)),
                             "level": level, "type": ptype, "computation": f"{ptype}:{','.join(map(str, ops))}",
                             "problem": p.as_dict()})  # fmt: skip
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
