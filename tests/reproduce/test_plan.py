"""The experiment's plan and read-back: checkpoints, the arms' commands, curves from `tpt eval` rows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tpt.errors import ConfigError
from tpt.reproduce.experiment import Layout, plan_arms, task_file
from tpt.reproduce.presets import SCALES, Scale, get_scale
from tpt.reproduce.results import accuracy_by_level, arm_curves, best_mode


def test_checkpoints_are_geometric_whole_batches_ending_at_the_budget() -> None:
    scale = get_scale("default")
    points = scale.checkpoints()
    assert (
        points[-1] >= scale.tokens_per_arm
        and points[-1] - scale.tokens_per_arm < scale.batch_tokens
    )
    assert all(p % scale.batch_tokens == 0 for p in points)
    assert scale.earlier_stop_tokens() in points
    assert points[0] == pytest.approx(scale.tokens_per_arm / 32, rel=0.01)
    assert len(points) == scale.num_checkpoints
    for s in SCALES.values():
        assert len(set(s.checkpoints())) == len(s.checkpoints())


def test_bad_scales_are_rejected() -> None:
    with pytest.raises(ConfigError):
        get_scale("huge")
    with pytest.raises(ConfigError):
        Scale(
            name="x",
            tokens_per_arm=1000,
            seeds=(0,),
            extra_arm_seeds=(),
            num_checkpoints=4,
            earlier_stop_fraction=0.5,
            test_per_type=5,
        )
    with pytest.raises(ConfigError):
        Scale(
            name="x",
            tokens_per_arm=10**6,
            seeds=(0,),
            extra_arm_seeds=(1,),
            num_checkpoints=4,
            earlier_stop_fraction=0.5,
            test_per_type=5,
        )


def test_every_arm_runs_the_four_user_commands(tmp_path: Path) -> None:
    scale = get_scale("default")
    jobs = plan_arms(Layout(root=tmp_path), scale, num_tpt_documents=1234)
    names = [j.name for j in jobs]
    assert names == [
        "seed-0-raw",
        "seed-0-tpt",
        "seed-1-raw",
        "seed-1-tpt",
        "seed-0-raw-constrained",
        "seed-0-tpt-weak",
    ]
    for job in jobs:
        assert [s.argv[0] for s in job.steps] == ["augment", "pack", "train", "eval"]
        train = job.steps[2].argv
        assert train[train.index("--tokens") + 1] == str(
            scale.tokens_per_arm
        )  # the same budget for every arm
    by = {j.name: j for j in jobs}
    assert "--limit" in by["seed-0-raw-constrained"].steps[0].argv  # only the TPT arm's documents
    assert by["seed-0-raw-constrained"].steps[0].argv[1] == by["seed-0-raw"].steps[0].argv[1]
    assert "error_rate=0.4" in by["seed-0-tpt-weak"].steps[0].argv
    assert (
        by["seed-0-raw"].steps[1].argv[by["seed-0-raw"].steps[1].argv.index("--mode") + 1] == "raw"
    )


def test_task_file_loads_in_tpt_eval(tmp_path: Path) -> None:
    from tpt.evaluate.taskfile import load_task_file

    (tmp_path / "heldout.jsonl").write_text(
        json.dumps({"id": "a", "question": "q?", "answer": "3"}) + "\n"
    )
    (tmp_path / "tasks.json").write_text(json.dumps(task_file(tmp_path / "heldout.jsonl")))
    tasks = load_task_file(tmp_path / "tasks.json")
    assert [t.name for t in tasks] == ["testbed-direct", "testbed-think"]
    assert tasks[1].stop == ("</think>",)


def test_curves_and_levels_from_eval_rows(tmp_path: Path) -> None:
    rows = [
        {"task": "testbed-direct", "metric": "accuracy", "tokens_seen": 2000, "value": 0.2},
        {"task": "testbed-direct", "metric": "accuracy", "tokens_seen": 1000, "value": 0.1},
        {"task": "testbed-direct", "metric": "truncated", "tokens_seen": 1000, "value": 0.9},
        {"task": "testbed-think", "metric": "accuracy", "tokens_seen": 1000, "value": 0.0},
        {"task": "testbed-think", "metric": "accuracy", "tokens_seen": 2000, "value": 0.5},
    ]
    curves = arm_curves(rows)
    assert curves["direct"].tokens == (1000, 2000) and curves["direct"].accuracy == (0.1, 0.2)
    assert best_mode(curves) == "think"
    samples = tmp_path / "eval.samples.jsonl"
    samples.write_text("".join(json.dumps(s) + "\n" for s in [
        {"task": "testbed-think", "id": "a", "tokens_seen": 2000, "correct": {"accuracy": True}},
        {"task": "testbed-think", "id": "b", "tokens_seen": 2000, "correct": {"accuracy": False}},
        {"task": "testbed-think", "id": "b", "tokens_seen": 1000, "correct": {"accuracy": True}},
    ]))  # fmt: skip
    levels = accuracy_by_level(samples, {"a": {"level": 1}, "b": {"level": 3}}, 2000)
    assert levels == {"think": {"level-1": 1.0, "level-3": 0.0}}


def test_makespan_follows_the_list_schedule() -> None:
    from tpt.reproduce.runner import makespan

    assert makespan([3, 3, 2], 2) == 5
    assert makespan([5, 1, 1, 1], 2) == 5
    assert makespan([1, 2, 3], 1) == 6
