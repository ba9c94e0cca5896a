"""docs/python-api.md runs: augment -> validate -> pack -> train -> eval on a handful of documents, from Python."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PAGE = ROOT / "docs" / "python-api.md"


def code_blocks(page: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", page.read_text(encoding="utf-8"), flags=re.S | re.M)


def test_the_python_api_page_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    blocks = code_blocks(PAGE)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), scope)
    out = tmp_path / "out"
    augmented = json.loads((out / "aug" / "summary.json").read_text())
    assert augmented["records"] == 48
    assert 0 < scope["checked"].kept <= 48
    assert scope["packed"].augmented_samples == scope["checked"].kept
    checkpoints = sorted((out / "train" / "checkpoints").iterdir())
    assert json.loads((checkpoints[-1] / "tpt_checkpoint.json").read_text())["tokens_seen"] == 16384
    assert (scope["trained"].tokens_seen, scope["trained"].final_checkpoint.name) == (
        16384,
        checkpoints[-1].name,
    )
    rows = [json.loads(line) for line in (out / "eval.jsonl").read_text().splitlines()]
    accuracy = [r for r in rows if r["task"] == "direct" and r["metric"] == "accuracy"]
    assert accuracy and all(0 <= r["value"] <= 1 for r in accuracy)
    assert "validate: kept" in capsys.readouterr().out


def test_the_readme_shows_the_pages_pipeline_verbatim() -> None:
    """The README's Python block is this page's pipeline block, so the test above runs it too."""
    (readme_block,) = code_blocks(ROOT / "README.md")
    assert readme_block == code_blocks(PAGE)[1]
