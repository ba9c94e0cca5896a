"""The testbed corpus generator: intensity levels, aligned arms, and no train/test overlap."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tpt.core.errors import ConfigError, InputError
from tpt.reproduce.problems import TYPES, Problem, answer, document, solve
from tpt.reproduce.testbed import (
    CorpusConfig,
    document_stream,
    exercise_records,
    heldout_problems,
    make_world,
    pool,
    shuffled_partner,
    write_corpus,
)


def test_problem_solutions_have_one_step_per_level() -> None:
    p = Problem(type="chain3", operands=(2, 3, 4, 5), name="Dan", item="pens")
    assert [s.render() for s in solve(p)] == ["2 + 3 = 5.", "5 x 4 = 20.", "20 + 5 = 25."]
    assert answer(p) == 25 and p.level == 3
    assert document(p, with_answer=True).endswith("How many pens does Dan have? Answer: 25.")
    assert document(p, with_answer=False).endswith("How many pens does Dan have?")
    assert [s.value for s in solve(p, wrong_step=0, wrong_delta=1)] == [
        6,
        24,
        29,
    ]  # the slip carries on
    for ptype in TYPES.values():
        ops = tuple(range(2, 2 + ptype.arity))
        assert len(solve(Problem(type=ptype.name, operands=ops, name="Eve", item="cards"))) == ptype.level


def test_world_split_is_disjoint_and_covers_every_tuple(world) -> None:
    for name, ptype in TYPES.items():
        train, held = set(world.train[name]), set(world.heldout[name])
        assert not train & held
        assert train | held == set(ptype.tuples())
        if ptype.level > 1:
            assert 0.1 < len(held) / (len(held) + len(train)) < 0.2


def test_every_level_holds_out_at_least_50_distinct_computations(corpus_config, world) -> None:
    by_level: dict[int, int] = {}
    for name, ptype in TYPES.items():
        by_level[ptype.level] = by_level.get(ptype.level, 0) + len(world.heldout[name])
    assert all(n >= corpus_config.min_heldout_per_level for n in by_level.values()), by_level
    test = heldout_problems(corpus_config, world, per_level=80)
    for level in (1, 2, 3):
        rows = [r for r in test if r["level"] == level]
        assert len(rows) == 80 and len({r["computation"] for r in rows}) >= 50


def test_heldout_problems_never_share_numbers_with_training_documents(corpus_config, world) -> None:
    docs = pool(corpus_config, world)
    train_instances = {(d.problem.type, d.problem.operands) for d in docs}
    test = heldout_problems(corpus_config, world, per_level=60)
    assert len(test) == 180
    assert not {(r["type"], tuple(r["problem"]["operands"])) for r in test} & train_instances
    assert all(r["answer"] == str(answer(Problem.from_dict(r["problem"]))) for r in test)


def test_pool_levels_worked_share_and_answers(corpus_config, world, tmp_path: Path) -> None:
    docs = list(itertools.islice(document_stream(corpus_config, world, seed=3), 6000))
    levels = [d.problem.level for d in docs]
    # mix: fact 1, six problem types 1.5 each -> level 0 is 1/10, levels 1-3 are 3/10 each
    for level, share in ((0, 0.1), (1, 0.3), (2, 0.3), (3, 0.3)):
        assert abs(levels.count(level) / len(levels) - share) < 0.03
    problems = [d for d in docs if d.problem.level > 0]
    assert abs(sum(d.worked for d in problems) / len(problems) - 0.5) < 0.03
    assert abs(sum(d.exercise for d in problems) / len(problems) - 0.3) < 0.03
    assert not any(d.worked and d.exercise for d in docs)
    assert not any(d.worked or d.exercise for d in docs if d.problem.level == 0)
    stats = write_corpus(tmp_path / "raw.jsonl", pool(corpus_config, world), kind="raw")
    raw = [json.loads(x) for x in (tmp_path / "raw.jsonl").read_text().splitlines()]
    assert stats["documents"] == corpus_config.pool_documents == len(raw)
    problem_docs = [r for r in raw if r["level"] > 0]
    assert all("Answer:" in r["text"] and not r["exercise"] for r in problem_docs)  # paper-faithful
    worked = [r for r in problem_docs if r["worked"]]
    assert worked and all("Solution:" in r["text"] and " = " in r["text"] for r in worked)


def test_the_exercise_ablation_hides_answers_of_the_same_documents(
    corpus_config, world, tmp_path: Path
) -> None:
    docs = pool(corpus_config, world)
    write_corpus(tmp_path / "raw.jsonl", docs, kind="raw")
    write_corpus(tmp_path / "ex.jsonl", docs, kind="exercises")
    raw = [json.loads(x) for x in (tmp_path / "raw.jsonl").read_text().splitlines()]
    ex = [json.loads(x) for x in (tmp_path / "ex.jsonl").read_text().splitlines()]
    assert [r["id"] for r in raw] == [r["id"] for r in ex]
    hidden = [(a, b) for a, b in zip(raw, ex, strict=True) if b["exercise"]]
    assert 0.2 < len(hidden) / sum(r["level"] > 0 for r in raw) < 0.35
    for a, b in hidden:
        assert a["text"].startswith(b["text"]) and "Answer:" not in b["text"] and a["problem"] == b["problem"]


def test_the_shuffled_control_pairs_each_document_with_another_problem(
    corpus_config, world, tmp_path: Path
) -> None:
    docs = pool(corpus_config, world)
    partner = shuffled_partner(docs, seed=0)
    assert sorted(partner) == list(range(len(docs)))  # a permutation: every thinking used once
    assert all(p != i for i, p in enumerate(partner))
    key = [(d.problem.type, d.problem.operands) for d in docs]
    assert all(key[p] != key[i] for i, p in enumerate(partner))
    assert partner != shuffled_partner(docs, seed=1)
    write_corpus(tmp_path / "raw.jsonl", docs, kind="raw")
    write_corpus(tmp_path / "sh.jsonl", docs, kind="shuffled", seed=0)
    raw = [json.loads(x) for x in (tmp_path / "raw.jsonl").read_text().splitlines()]
    sh = [json.loads(x) for x in (tmp_path / "sh.jsonl").read_text().splitlines()]
    assert [r["text"] for r in raw] == [r["text"] for r in sh]  # the same documents ...
    assert [sh[i]["problem"] for i in range(len(sh))] == [
        raw[p]["problem"] for p in partner
    ]  # ... wrong thinking


def test_exercise_records_hide_the_answer(corpus_config, world) -> None:
    rows = exercise_records(heldout_problems(corpus_config, world, per_level=6))
    assert all(r["exercise"] and "Answer" not in r["text"] for r in rows)


def test_bad_configs_and_problems_are_rejected() -> None:
    with pytest.raises(ConfigError):
        CorpusConfig(mix={"nope": 1.0})
    with pytest.raises(ConfigError):
        CorpusConfig(exercise_fraction=1.0)
    with pytest.raises(ConfigError):
        CorpusConfig(worked_fraction=-0.1)
    with pytest.raises(InputError):
        Problem.from_dict({"type": "add1", "operands": [1, 2, 3], "name": "A", "item": "b"})
    with pytest.raises(InputError):
        Problem.from_dict({"type": "add1"})


def test_split_depends_only_on_world_seed() -> None:
    assert make_world(CorpusConfig()) == make_world(CorpusConfig())
    assert make_world(CorpusConfig()) != make_world(CorpusConfig(world_seed=7))
