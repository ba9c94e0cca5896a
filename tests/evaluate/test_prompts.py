"""Prompt construction: exact layout, and exemplars that never include the scored question."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tpt.core.errors import ConfigError, InputError
from tpt.evaluate.builtin import BUILTIN_TASKS, MATH_EXEMPLARS, get_builtin
from tpt.evaluate.prompts import prepare_task, split_pool
from tpt.evaluate.records import load_examples
from tpt.evaluate.spec import DataSource, FewShotSpec, TaskSpec


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_layout_is_exact(tmp_path: Path) -> None:
    data = _write(
        tmp_path / "d.jsonl", [{"question": "1+1?", "answer": 2}, {"question": "2+2?", "answer": 4}]
    )
    task = TaskSpec(
        name="t",
        data=DataSource(path=str(data)),
        prompt="Q: {question}\nA:",
        preamble="Math.\n\n",
        fewshot=FewShotSpec(k=1, inline=({"question": "3+3?", "answer": 6},)),
        metrics=(("accuracy", "first_number"),),
    )
    prep = prepare_task(task)
    assert prep.prompts[0] == "Math.\n\nQ: 3+3?\nA: 6\n\nQ: 1+1?\nA:"
    assert [e.gold for e in prep.examples] == ["2", "4"]


def test_exemplar_equal_to_question_is_skipped(tmp_path: Path) -> None:
    """A pool drawn from the same file (or containing the same text) must never show the scored question."""
    rows = [{"id": i, "question": f"what is {i} + {i} ?", "answer": 2 * i} for i in range(6)]
    data = _write(tmp_path / "d.jsonl", rows)
    task = TaskSpec(
        name="t",
        data=DataSource(path=str(data), id_field="id"),
        prompt="{question}",
        fewshot=FewShotSpec(k=3, pool=DataSource(path=str(data), id_field="id")),
        metrics=(("accuracy", "first_number"),),
    )
    prep = prepare_task(task)
    for ex, prompt in zip(prep.examples, prep.prompts, strict=True):
        shots = prompt.split("\n\n")[:-1]
        assert len(shots) == 3
        assert all(ex.question not in shot for shot in shots)
    # question 0 sees pool items 1, 2, 3; question 4 sees 0, 1, 2
    assert prep.prompts[0].startswith("what is 1 + 1 ? 2\n\n")
    assert prep.prompts[4].startswith("what is 0 + 0 ? 0\n\n")


@pytest.mark.parametrize("name", sorted(BUILTIN_TASKS))
def test_builtin_exemplars_never_include_the_test_question(name: str) -> None:
    task = get_builtin(name)
    prep = prepare_task(task, limit=40)
    assert len(prep.prompts) == 40
    for ex, prompt in zip(prep.examples, prep.prompts, strict=True):
        body = prompt[: prompt.rindex(ex.question)]  # everything before the scored question itself
        assert ex.question not in body, f"{name}: question {ex.id} appears among its exemplars"
        assert prompt.count(ex.question) == 1


def test_builtin_shot_counts_and_sources() -> None:
    gsm = prepare_task(get_builtin("gsm8k"), limit=2)
    assert gsm.prompts[0].count("Question:") == 6 and gsm.prompts[0].count("####") == 5
    train = {
        e.question
        for e in load_examples(DataSource(path=get_builtin("gsm8k").fewshot.pool.path, reader="gsm8k"))
    }
    shots = [p.split("\nAnswer:")[0].removeprefix("Question: ") for p in gsm.prompts[0].split("\n\n")[:-1]]
    assert all(s in train for s in shots)
    assert gsm.prompts[0].split("\n\n")[:-1] == gsm.prompts[1].split("\n\n")[:-1]  # fixed exemplars
    math = prepare_task(get_builtin("math500"), limit=1)
    assert math.prompts[0].count("Problem:") == 5 and math.prompts[0].count("\\boxed") == 4
    mmlu = prepare_task(get_builtin("mmlu"), limit=300)
    for ex, prompt in zip(mmlu.examples, mmlu.prompts, strict=True):
        assert prompt.count("The answer is (") == 2
        assert prompt.startswith(
            f"The following are multiple choice questions (with answers) about {ex.fields['subject_name']}."
        )


def test_arc_holdout_is_never_scored() -> None:
    task = get_builtin("arc_challenge")
    data = load_examples(task.data)
    scored, pool = split_pool(task, data)
    assert len(pool) == 4 and len(scored) == len(data) - 4 == 1168
    assert not {e.id for e in pool} & {e.id for e in scored}
    prep = prepare_task(task)
    assert len(prep.examples) == 1168
    shown = {q for p in prep.prompts for q in [p.split("\n\n")[0], p.split("\n\n")[1]]}
    assert len(shown) == 2  # the same two held-out exemplars for every question
    assert all(e.question in " ".join(shown) for e in pool[:2])


def test_math_exemplars_are_not_math500_problems() -> None:
    test = {e.question.strip() for e in load_examples(get_builtin("math500").data)}
    assert not {ex["problem"].strip() for ex in MATH_EXEMPLARS} & test


def test_svamp_gold_and_question() -> None:
    prep = prepare_task(get_builtin("svamp"), limit=3)
    ex = prep.examples[0]
    assert ex.gold.lstrip("-").replace(".", "").isdigit()
    assert prep.prompts[0].endswith(f"Question: {ex.question}\nAnswer:")


def test_missing_template_field_is_named(tmp_path: Path) -> None:
    data = _write(tmp_path / "d.jsonl", [{"question": "q", "answer": 1}])
    task = TaskSpec(
        name="t",
        data=DataSource(path=str(data)),
        prompt="{problem}",
        metrics=(("accuracy", "first_number"),),
    )
    with pytest.raises(InputError, match="'problem'"):
        prepare_task(task)


def test_not_enough_exemplars_is_an_error(tmp_path: Path) -> None:
    data = _write(tmp_path / "d.jsonl", [{"question": "q", "answer": 1}])
    task = TaskSpec(
        name="t",
        data=DataSource(path=str(data)),
        prompt="{question}",
        fewshot=FewShotSpec(k=2, inline=({"question": "a", "answer": 1},)),
        metrics=(("accuracy", "first_number"),),
    )
    with pytest.raises(InputError, match="only 1 of 2 exemplars"):
        prepare_task(task)


def test_fewshot_needs_one_source() -> None:
    with pytest.raises(ConfigError, match="exactly one exemplar source"):
        FewShotSpec(k=2)


@pytest.mark.parametrize("name", ["gsm8k", "math500", "mmlu", "arc_challenge", "svamp"])
def test_builtin_protocol_names_what_its_exemplars_hold(name: str) -> None:
    """A task called chain of thought shows reasoning in its exemplars; one whose exemplars only give the
    answer says so (MMLU dev has no rationales: tpt's mmlu is not the paper's 2-shot CoT)."""
    from tpt.evaluate.prompts import render, select_exemplars

    task = get_builtin(name)
    data = load_examples(task.data)
    scored, pool = split_pool(task, data)
    targets = [
        render(task.target, ex.fields, task=name, what="target")
        for ex in select_exemplars(task, scored[0], pool)
    ]
    reasoning = all(len(t.split()) > 8 for t in targets)
    assert ("chain of thought" in task.description) is reasoning
    assert ("answer-only" in task.description) is (not reasoning)
