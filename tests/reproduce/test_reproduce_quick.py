"""`tpt reproduce --scale quick` end to end: every stage runs for real (augment, pack, train, eval and the
embedded teacher), the report and summary are written from the runs, and a re-run reuses them."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_quick_preset_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "tpt", "reproduce", "--output", str(out), "--scale", "quick"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["primary_endpoint"] == "testbed-cot"
    arms = summary["arms"]
    assert set(arms) == {"raw", "tpt", "tpt-llm", "tpt-shuffled"}
    assert {a: e["teacher"] for a, e in arms.items()} == {
        "raw": "none",
        "tpt": "oracle",
        "tpt-llm": "embedded-llm",
        "tpt-shuffled": "shuffled",
    }
    for arm, e in arms.items():
        lo, hi = e["final_accuracy"]["ci"]
        assert 0.0 <= lo <= e["final_accuracy"]["mean"] <= hi <= 1.0
        curve = e["curves"]["0"]["testbed-cot"]
        assert (
            len(curve["tokens"]) == len(curve["accuracy"]) >= 2 and curve["n"] == summary["test"]["problems"]
        )
        if arm != "raw":
            f = e["factor_vs_raw"]
            assert f["ci"][0] <= f["value"] <= f["ci"][1] and set(f["per_seed"]) == {"0"}
            assert math.isfinite(f["value"])
    # Every arm went through the stages and recorded its config; the LLM arm packs the teacher's records.
    for name in ("seed-0-raw", "seed-0-tpt", "seed-0-tpt-shuffled"):
        run = summary["runs"][name]
        assert [c[0] for c in run["commands"]] == ["augment", "pack", "train", "eval"]
        assert set(run["configs"]) == {"augment", "pack", "train", "eval"}
    assert [c[0] for c in summary["runs"]["seed-0-tpt-llm"]["commands"]] == ["pack", "train", "eval"]
    llm = summary["llm_teacher"]
    assert llm["quality"]["trajectories"] == summary["testbed"]["pool_documents"]
    assert set(llm["accuracy_on_heldout"]) == {"testbed-cot"}  # scored like its students, on the primary task
    report = (out / "report.md").read_text()
    assert "Primary endpoint, fixed before training: `testbed-cot`" in report
    assert "like for like" in report and summary["headline"] in report
    assert (out / "plots" / "accuracy.png").stat().st_size > 1000
    # A re-run reuses every finished command and rewrites the same numbers.
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("reused") >= 5
    assert json.loads((out / "summary.json").read_text())["arms"] == arms


def test_a_different_scale_in_the_same_directory_is_refused(tmp_path: Path) -> None:
    from tpt.cli import main

    (tmp_path / "manifest.json").write_text(
        json.dumps({"stage": "reproduce", "fingerprint": "x", "fingerprinted": {}})
    )
    assert main(["reproduce", "--output", str(tmp_path), "--scale", "quick"]) == 2


def test_unknown_scale_is_a_clear_error(tmp_path: Path, capsys) -> None:
    from tpt.cli import main

    assert main(["reproduce", "--output", str(tmp_path), "--scale", "huge"]) == 2
    assert "unknown --scale 'huge'" in capsys.readouterr().err
