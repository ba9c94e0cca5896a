"""--export-lm-eval: YAMLs that point at local data holding tpt's exact prompts, with equivalent filters."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tpt.cli import main
from tpt.evaluate.builtin import get_builtin
from tpt.evaluate.extract import extract, parse_rule
from tpt.evaluate.lm_eval_export import filter_for
from tpt.evaluate.prompts import prepare_task


def lm_eval_regex_filter(pattern: str, group_select: int, text: str) -> str:
    """What lm-eval's `regex` filter returns (lm_eval/filters/extraction.py: findall, pick, first group)."""
    match = re.compile(pattern).findall(text)
    if not match:
        return "[invalid]"
    match = match[group_select]
    if isinstance(match, tuple):
        match = [m for m in match if m]
        match = match[0] if match else "[invalid]"
    return match.strip()


GENERATIONS = [
    ("first_number", " 27 . dan has 4"),
    ("last_number", "So she pays $1,250.50 in total, 3 times"),
    ("last_spaced_number", " 2 4 + 5 = 2 9 . so 2 9 "),
    ("boxed", "so \\boxed{\\frac{1}{2}} and finally $\\boxed{\\frac{3}{4}}$."),
    ("mc_letter", "the answer is (A). No: The answer is (C)."),
    (r"regex:#### (\-?[0-9\.\,]+)", "2 + 2 = 4\n#### 4"),
]


@pytest.mark.parametrize(("rule", "text"), GENERATIONS)
def test_filters_extract_what_tpt_extracts(rule: str, text: str) -> None:
    pattern, group = filter_for(rule)
    expected = extract(parse_rule(rule), text)
    got = lm_eval_regex_filter(pattern, group, text)
    if "spaced" in rule:
        got = got.replace(" ", "")  # the exported YAML ignores spaces for spaced-digit rules
    assert got == expected


def test_export_writes_yaml_and_prompts(tmp_path: Path, problems_file: Path) -> None:
    spec = {
        "name": "mine",
        "data": str(problems_file),
        "prompt": "{question} =",
        "stop": [" ."],
        "extract": "first_number",
    }
    (tmp_path / "mine.json").write_text(json.dumps(spec))
    out = tmp_path / "lm"
    code = main(
        [
            "eval",
            "--tasks",
            "gsm8k",
            "--task-file",
            str(tmp_path / "mine.json"),
            "--limit",
            "3",
            "--export-lm-eval",
            str(out),
        ]
    )
    assert code == 0
    doc = yaml.safe_load((out / "tpt_gsm8k.yaml").read_text())
    assert doc["task"] == "tpt_gsm8k" and doc["dataset_path"] == "json"
    data_file = Path(doc["dataset_kwargs"]["data_files"]["test"])
    assert data_file == (out / "tpt_gsm8k.jsonl").resolve()
    assert doc["generation_kwargs"]["until"] == list(get_builtin("gsm8k").stop)
    assert doc["generation_kwargs"]["max_gen_toks"] == 2048
    assert [f["name"] for f in doc["filter_list"]] == ["accuracy", "accuracy_flexible"]
    rows = [json.loads(line) for line in data_file.read_text().splitlines()]
    prep = prepare_task(get_builtin("gsm8k"), limit=3)
    assert [r["query"] for r in rows] == list(prep.prompts)
    assert [r["gold"] for r in rows] == [e.gold for e in prep.examples]
    mine = yaml.safe_load((out / "tpt_mine.yaml").read_text())
    assert mine["generation_kwargs"]["until"] == [" ."]
