"""`tpt reproduce --scale quick` end to end: every stage runs for real (augment, pack with its controls,
train, eval) in both worlds, summary.json holds everything its numbers come from (a recomputation from it
alone gives them back), its paths are relative, and a re-run reuses every command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tpt.reproduce.analysis import analyse, decide
from tpt.reproduce.presets import ARMS


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reproduce") / "demo"
    cmd = [sys.executable, "-m", "tpt", "reproduce", "--output", str(out), "--scale", "quick",
           "--world-seed", "20261207", "--test-seed", "7"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("reused") == 2 + 2 * len(ARMS)  # every job of both worlds (one seed)
    return out


@pytest.mark.slow
def test_summary_has_both_worlds_and_every_number_recomputes(demo: Path) -> None:
    summary = json.loads((demo / "summary.json").read_text())
    assert str(demo) not in (demo / "summary.json").read_text()  # every path relative to the run dir
    assert summary["primary_world"] == "knowledge" and summary["primary_endpoint"] == "knowledge-think"
    assert summary["arms"] == summary["worlds"]["knowledge"]["arms"] and set(summary["arms"]) == set(ARMS)
    assert summary["seeds"]["fresh"] is True and summary["seeds"]["development"]["world_seed"] == [1234]
    for name, w in summary["worlds"].items():
        for c in ("tpt-vs-tpt-shuffled", "tpt-vs-raw"):
            assert {"value", "ci", "verdict"} <= set(w["contrasts"][c])
        assert w["tasks"][0] == w["primary_endpoint"]
        again = analyse(w["per_item"], tasks=tuple(w["tasks"]), statistic=w["statistic"],
                        n_boot=summary["scale"]["bootstrap_replicates"])  # fmt: skip
        assert json.loads(json.dumps(again)) == {k: w[k] for k in again}, name
    prereg = json.loads((demo / summary["preregistration"]["path"]).read_text())
    from tpt.reproduce.prereg import sha256

    assert sha256(prereg) == summary["preregistration"]["sha256"]
    report = (demo / "report.md").read_text()
    assert report.splitlines()[0] == f"**{decide('knowledge', summary['worlds']['knowledge'])}**"
    assert summary["headline"] in report and (demo / "plots" / "knowledge.png").stat().st_size > 1000
    # The commands it ran, and each training run's per-step log, under the run directory.
    job = summary["runs"]["knowledge-seed-0-tpt-shuffled"]
    assert [c[0] for c in job["commands"]] == ["pack", "train", "eval"] and job["cpu_s"] > 0
    train_dir = job["commands"][1][job["commands"][1].index("--output") + 1]
    steps = (demo / train_dir / "metrics.jsonl").read_text().splitlines()
    assert len(steps) >= 8192 // 2048  # one line per optimizer step
    assert (
        job["pack"]["thinking_tokens"] == summary["runs"]["knowledge-seed-0-tpt"]["pack"]["thinking_tokens"]
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
