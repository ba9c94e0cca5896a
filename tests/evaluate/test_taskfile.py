"""Task files (--task-file): the documented format parses, and bad files get messages naming the problem."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tpt.core.errors import ConfigError, InputError
from tpt.evaluate.prompts import prepare_task
from tpt.evaluate.stage import resolve_tasks
from tpt.evaluate.taskfile import load_task_file


def _data(tmp_path: Path) -> Path:
    rows = [
        {
            "qid": "a",
            "text": "dan has 2 bags with 3 pens each . how many pens ?",
            "gold": 6,
            "level": 1,
        },
        {
            "qid": "b",
            "text": "amy has 4 bags with 2 cups each . how many cups ?",
            "gold": 8,
            "level": 1,
        },
        {
            "qid": "c",
            "text": "bob has 5 bags with 5 hats each . how many hats ?",
            "gold": 25,
            "level": 2,
        },
    ]
    path = tmp_path / "held_out.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


YAML_TASKS = """
tasks:
  - name: direct
    data: held_out.jsonl
    question_field: text
    answer_field: gold
    id_field: qid
    prompt: "{question}"
    stop: [" .", "\\n"]
    max_new_tokens: 64
    extract: first_number
  - name: think
    description: think first, then the last number before </think>
    data: held_out.jsonl
    question_field: text
    answer_field: gold
    prompt: "{question} <think>"
    stop: "</think>"
    extract: {accuracy: last_number, accuracy_spaced: last_spaced_number}
    fewshot:
      k: 1
      order: seeded
      examples:
        - {text: "eve has 1 bag with 7 pens . how many pens ?", gold: 7}
    target: "1 x 7 = 7 . </think> {answer}"
"""


def test_yaml_task_file(tmp_path: Path) -> None:
    _data(tmp_path)
    (tmp_path / "tasks.yaml").write_text(YAML_TASKS, encoding="utf-8")
    direct, think = load_task_file(tmp_path / "tasks.yaml")
    assert direct.name == "direct" and direct.stop == (" .", "\n") and direct.max_new_tokens == 64
    assert direct.metrics == (("accuracy", "first_number"),)
    assert think.stop == ("</think>",)
    assert dict(think.metrics) == {
        "accuracy": "last_number",
        "accuracy_spaced": "last_spaced_number",
    }
    prep = prepare_task(direct)
    assert [e.id for e in prep.examples] == ["a", "b", "c"]
    assert [e.gold for e in prep.examples] == ["6", "8", "25"]
    assert prep.prompts[0] == "dan has 2 bags with 3 pens each . how many pens ?"
    prep = prepare_task(think, limit=1)
    assert prep.prompts == (
        "eve has 1 bag with 7 pens . how many pens ? <think> 1 x 7 = 7 . </think> 7\n\n"
        "dan has 2 bags with 3 pens each . how many pens ? <think>",
    )
    assert prep.examples[0].id == "1"  # no id_field: the line number


def test_json_task_file_with_fewshot_file(tmp_path: Path) -> None:
    data = _data(tmp_path)
    spec = {
        "name": "j",
        "data": data.name,
        "question_field": "text",
        "answer_field": "gold",
        "id_field": "qid",
        "prompt": "Q: {question}\nA:",
        "extract": "regex:(\\d+)",
        "fewshot": {"k": 2, "file": data.name, "match_field": "level"},
    }
    (tmp_path / "t.json").write_text(json.dumps(spec), encoding="utf-8")
    [task] = resolve_tasks([str(tmp_path / "t.json")])
    # same file: question "a" may use "b" (same level) but never itself, so k=2 cannot be met
    with pytest.raises(InputError, match=r"only 1 of 2 exemplars .*level=1"):
        prepare_task(task)
    spec["fewshot"] = {"k": 1, "file": data.name, "match_field": "level"}
    (tmp_path / "t.json").write_text(json.dumps(spec), encoding="utf-8")
    prep = prepare_task(load_task_file(tmp_path / "t.json")[0], limit=2)
    assert prep.prompts[0].startswith("Q: amy has 4 bags")
    assert prep.prompts[1].startswith("Q: dan has 2 bags")
    del prep


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"extract": None}, "missing required field\\(s\\) extract"),
        ({"promt": "x"}, "unknown key 'promt'; did you mean 'prompt'"),
        ({"extract": "first_numbr"}, "'x': unknown extraction rule 'first_numbr'"),
        ({"compare": "fuzzy"}, "unknown compare mode 'fuzzy'"),
        ({"prompt": "{question"}, "malformed template"),
        ({"stop": [1]}, "'stop': expected a string or a list of strings"),
        ({"fewshot": {"k": 2}}, "exactly one exemplar source"),
        ({"fewshot": {"k": 1, "exemples": []}}, "did you mean 'examples'"),
        ({"max_new_tokens": "64"}, "'max_new_tokens' must be an integer"),
    ],
)
def test_bad_task_files(tmp_path: Path, patch: dict, message: str) -> None:
    _data(tmp_path)
    spec = {
        "name": "x",
        "data": "held_out.jsonl",
        "prompt": "{question}",
        "extract": "first_number",
        **patch,
    }
    spec = {k: v for k, v in spec.items() if v is not None}
    (tmp_path / "t.json").write_text(json.dumps(spec), encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_task_file(tmp_path / "t.json")


def test_records_missing_a_field_are_named(tmp_path: Path) -> None:
    _data(tmp_path)
    spec = {
        "name": "x",
        "data": "held_out.jsonl",
        "prompt": "{question}",
        "extract": "first_number",
    }
    (tmp_path / "t.json").write_text(json.dumps(spec), encoding="utf-8")
    [task] = load_task_file(tmp_path / "t.json")
    with pytest.raises(
        InputError,
        match=r"held_out.jsonl:1: record has no field 'question' \(fields: gold, level, qid, text\)",
    ):
        prepare_task(task)


def test_missing_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="task file .* does not exist"):
        load_task_file(tmp_path / "nope.yaml")
    (tmp_path / "t.json").write_text(
        json.dumps({"name": "x", "data": "gone.jsonl", "prompt": "{q}", "extract": "boxed"})
    )
    with pytest.raises(InputError, match="gone.jsonl does not exist"):
        prepare_task(load_task_file(tmp_path / "t.json")[0])
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(InputError, match="not valid YAML"):
        load_task_file(tmp_path / "bad.yaml")


def test_unknown_builtin_task_suggests() -> None:
    with pytest.raises(ConfigError, match="unknown task 'gsm8';? did you mean 'gsm8k'"):
        resolve_tasks(["gsm8"])
    with pytest.raises(ConfigError, match="given twice: gsm8k"):
        resolve_tasks(["gsm8k", "gsm8k"])
