"""The testbed corpus generator: intensity levels, aligned arms, and no train/test overlap."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from tpt.errors import ConfigError, InputError
from tpt.reproduce.problems import TYPES, Problem, answer, document, solve
from tpt.reproduce.testbed import (
    CorpusConfig,
    document_stream,
    exercise_records,
    heldout_problems,
    make_world,
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
        assert (
            len(solve(Problem(type=ptype.name, operands=ops, name="Eve", item="cards")))
            == ptype.level
        )


def test_world_split_is_disjoint_and_covers_every_tuple(world) -> None:
    for name, ptype in TYPES.items():
        train, held = set(world.train[name]), set(world.heldout[name])
        assert not train & held
        assert train | held == set(ptype.tuples())
        assert 0.1 < len(held) / (len(held) + len(train)) < 0.2


def test_heldout_problems_never_share_numbers_with_training_documents(
    corpus_config, world, tmp_path: Path
) -> None:
    stats = write_corpus(
        tmp_path / "c.jsonl", corpus_config, world, seed=0, num_documents=3000, answers="as_drawn"
    )
    train_instances = set()
    for line in (tmp_path / "c.jsonl").read_text().splitlines():
        rec = json.loads(line)
        train_instances.add((rec["problem"]["type"], tuple(rec["problem"]["operands"])))
    test = heldout_problems(corpus_config, world, per_type=40)
    assert len(test) == 40 * len(TYPES)
    assert not {(r["type"], tuple(r["problem"]["operands"])) for r in test} & train_instances
    assert all(r["answer"] == str(answer(Problem.from_dict(r["problem"]))) for r in test)
    assert stats["documents"] == 3000 and set(stats) >= {"level-0", "level-1", "level-2", "level-3"}


def test_levels_and_exercise_share_follow_the_config(corpus_config, world) -> None:
    items = list(itertools.islice(document_stream(corpus_config, world, seed=3), 6000))
    levels = [p.level for p, _ in items]
    # mix: fact 1, six problem types 1.5 each -> level 0 is 1/10, levels 1-3 are 3/10 each
    for level, share in ((0, 0.1), (1, 0.3), (2, 0.3), (3, 0.3)):
        assert abs(levels.count(level) / len(levels) - share) < 0.03
    problems = [(p, e) for p, e in items if p.level > 0]
    assert abs(sum(e for _, e in problems) / len(problems) - 0.3) < 0.03
    assert not any(e for p, e in items if p.level == 0)


def test_arms_read_the_same_documents_in_the_same_order(
    corpus_config, world, tmp_path: Path
) -> None:
    write_corpus(
        tmp_path / "tpt.jsonl", corpus_config, world, seed=1, num_documents=500, answers="as_drawn"
    )
    write_corpus(
        tmp_path / "raw.jsonl", corpus_config, world, seed=1, num_documents=800, answers="all"
    )
    tpt = [json.loads(x) for x in (tmp_path / "tpt.jsonl").read_text().splitlines()]
    raw = [json.loads(x) for x in (tmp_path / "raw.jsonl").read_text().splitlines()]
    for a, b in zip(tpt, raw[:500], strict=True):
        assert a["problem"] == b["problem"] and a["id"] == b["id"]
        if a["exercise"]:
            assert (
                b["text"].startswith(a["text"])
                and "Answer:" in b["text"]
                and "Answer:" not in a["text"]
            )
        else:
            assert a["text"] == b["text"]
    assert not any(r["exercise"] for r in raw)


def test_exercise_records_hide_the_answer(corpus_config, world) -> None:
    rows = exercise_records(heldout_problems(corpus_config, world, per_type=2))
    assert all(r["exercise"] and "Answer" not in r["text"] for r in rows)


def test_bad_configs_and_problems_are_rejected() -> None:
    with pytest.raises(ConfigError):
        CorpusConfig(mix={"nope": 1.0})
    with pytest.raises(ConfigError):
        CorpusConfig(exercise_fraction=1.0)
    with pytest.raises(InputError):
        Problem.from_dict({"type": "add1", "operands": [1, 2, 3], "name": "A", "item": "b"})
    with pytest.raises(InputError):
        Problem.from_dict({"type": "add1"})


def test_split_depends_only_on_world_seed() -> None:
    assert make_world(CorpusConfig()) == make_world(CorpusConfig())
    assert make_world(CorpusConfig()) != make_world(CorpusConfig(world_seed=7))
