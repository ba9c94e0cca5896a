"""`tpt reproduce --scale quick` end to end: every stage runs for real (augment, pack, train, eval and the
embedded teacher), the report and summary are written from the runs, and a re-run reuses them."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REQUIRED = ("data_efficiency", "raw_final_accuracy", "tpt_final_accuracy", "student_accuracy",
            "weak_teacher_accuracy", "length_intensity_spearman")  # fmt: skip


@pytest.mark.slow
def test_quick_preset_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "tpt", "reproduce", "--output", str(out), "--scale", "quick"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    for key in REQUIRED:
        assert key in summary
    for key in (
        "raw_final_accuracy",
        "tpt_final_accuracy",
        "student_accuracy",
        "weak_teacher_accuracy",
    ):
        assert 0.0 <= summary[key] <= 1.0
    assert summary["data_efficiency"] is None or math.isfinite(summary["data_efficiency"])
    # The weak teacher's from-scratch accuracy is measured, near 1 - error_rate (0.4) on 60 problems.
    assert 0.35 < summary["weak_teacher_accuracy"] < 0.85
    # Every arm went through the four stages and recorded its config.
    for name in ("seed-0-raw", "seed-0-tpt", "seed-0-raw-constrained", "seed-0-tpt-weak"):
        run = summary["runs"][name]
        assert [c[0] for c in run["commands"]] == ["augment", "pack", "train", "eval"]
        assert set(run["configs"]) == {"augment", "pack", "train", "eval"}
        assert list(
            (
                out / "runs" / "seed-0" / name.removeprefix("seed-0-") / "train" / "checkpoints"
            ).iterdir()
        )
    assert summary["part2"]["documents"] and summary["part2"]["documents"][0]["thinking"]
    report = (out / "report.md").read_text()
    assert "Data efficiency" in report and "Trajectories, verbatim" in report
    assert (out / "plots" / "accuracy.png").stat().st_size > 1000
    assert (out / "plots" / "thinking_length.png").stat().st_size > 1000
    # A re-run reuses every finished command and rewrites the same numbers.
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("reused") >= 5
    assert (
        json.loads((out / "summary.json").read_text())["data_efficiency"]
        == summary["data_efficiency"]
    )


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
