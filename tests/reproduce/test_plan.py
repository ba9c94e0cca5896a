"""The run's plan: each world's files, the arms' commands (the pack controls, one budget, one task file),
the pre-registration written before any arm trains, the seeds and the job runner's dependencies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tpt.core.errors import ArtifactError, ConfigError
from tpt.reproduce import prereg, stage, worlds
from tpt.reproduce.config import ReproduceConfig
from tpt.reproduce.presets import ARMS, SCALES, WorldScale, get_scale


def _plans(tmp_path: Path, **kw: object) -> tuple[ReproduceConfig, dict[str, worlds.WorldPlan]]:
    config = ReproduceConfig(output=tmp_path, scale="quick", **kw)  # type: ignore[arg-type]
    return config, stage.prepare_worlds(tmp_path, config, config.resolved_scale())


def test_scales_fix_five_seeds_both_worlds_and_checkpoints_at_the_budget() -> None:
    default = get_scale("default")
    assert len(default.seeds) >= 5 and set(default.worlds) == {"knowledge", "arithmetic"}
    for s in SCALES.values():
        for w in s.worlds.values():
            assert w.checkpoints[-1] >= w.tokens_per_arm and all(
                c % w.batch_tokens == 0 for c in w.checkpoints
            )
    with pytest.raises(ConfigError):
        WorldScale(tokens_per_arm=10_000, checkpoints=(4096,), pool=10, test_per_stratum=2)
    with pytest.raises(ConfigError):
        get_scale("huge")
    with pytest.raises(ConfigError):
        ReproduceConfig(output=Path("x"), worlds=("knowledge", "cooking"))


def test_every_arm_packs_the_same_trajectories_with_its_control(tmp_path: Path) -> None:
    config, plans = _plans(tmp_path)
    scale = config.resolved_scale()
    jobs = stage.plan_jobs(tmp_path, scale, plans, tmp_path / "tok")
    by = {j.name: j for j in jobs}
    assert [j.name for j in jobs[:2]] == [f"{w}-augment" for w in ("knowledge", "arithmetic")] or [
        j.name for j in jobs[:2]
    ] == [f"{w}-augment" for w in ("arithmetic", "knowledge")]
    assert len(jobs) == 2 + 2 * len(ARMS) * len(scale.seeds)
    for w, plan in plans.items():
        aug = str(plan.root / "aug")
        assert by[f"{w}-augment"].steps[0].argv[:4] == (
            "augment",
            str(plan.root / "corpus.jsonl"),
            "--output",
            aug,
        )
        for seed in scale.seeds:
            for arm in ARMS:
                job = by[f"{w}-seed-{seed}-{arm}"]
                assert job.after == (f"{w}-augment",)
                pack, train, ev = (s.argv for s in job.steps)
                assert pack[1] == aug  # one set of trajectories for every arm and seed
                assert pack[pack.index("--mode") + 1] == ("raw" if arm == "raw" else "tpt")
                control = pack[pack.index("--control") + 1] if "--control" in pack else None
                assert control == {"tpt-shuffled": "shuffled", "tpt-filler": "filler"}.get(arm)
                if control == "shuffled":
                    assert pack[pack.index("--control-seed") + 1] == str(seed)
                assert train[train.index("--tokens") + 1] == str(scale.worlds[w].tokens_per_arm)
                assert ev[ev.index("--task-file") + 1] == str(plan.root / "tasks.json")


def test_task_files_load_in_tpt_eval_and_think_where_training_placed_it(tmp_path: Path) -> None:
    from tpt.evaluate.taskfile import load_task_file

    _, plans = _plans(tmp_path)
    for plan in plans.values():
        tasks = load_task_file(plan.root / "tasks.json")
        assert [t.name for t in tasks] == list(plan.tasks)
        rows = [json.loads(x) for x in (plan.root / "test.jsonl").read_text().splitlines()]
        assert all("stratum" in r for r in rows)
    think = json.loads((plans["knowledge"].root / "tasks.json").read_text())["tasks"][0]
    assert think["prompt"].endswith("{question}<think>")  # the document, then <think>, as in training
    arith = {t["name"]: t for t in json.loads((plans["arithmetic"].root / "tasks.json").read_text())["tasks"]}
    assert arith["testbed-think"]["prompt"].endswith("{question} Answer:")  # <think> comes after the answer


def test_preregistration_is_written_before_any_arm_trains(tmp_path: Path, monkeypatch) -> None:
    seen = {}

    def no_training(jobs, **kw):  # noqa: ANN001, ANN202
        seen["prereg"] = json.loads((tmp_path / "preregistration.json").read_text())
        raise ArtifactError("stopped before training")

    monkeypatch.setattr(stage, "run_jobs", no_training)
    with pytest.raises(ArtifactError, match="before training"):
        stage.run(ReproduceConfig(output=tmp_path, scale="quick", world_seed=77, test_seed=5))
    p = seen["prereg"]
    assert p["primary_world"] == "knowledge" and p["primary_contrast"] == "tpt-vs-tpt-shuffled"
    assert (
        p["worlds"]["knowledge"]["statistic"] == "difference"
        and p["worlds"]["arithmetic"]["statistic"] == "factor"
    )
    assert set(p["worlds"]["arithmetic"]["contrasts"]) == {"tpt-vs-tpt-shuffled", "tpt-vs-raw"}
    assert p["seeds"]["world_seed"] == 77 and p["seeds"]["fresh"] is True and "decision_rule" in p
    assert prereg.sha256(p) == prereg.sha256(json.loads((tmp_path / "preregistration.json").read_text()))


def test_world_and_test_seeds_change_the_world_and_the_test(tmp_path: Path) -> None:
    def files(name: str, **kw: object) -> dict[str, str]:
        _, plans = _plans(tmp_path / name, **kw)
        return {
            f"{w}/{f}": (p.root / f).read_text()
            for w, p in plans.items()
            for f in ("corpus.jsonl", "test.jsonl")
        }

    a, b = files("a"), files("b")
    assert a == b
    t = files("t", test_seed=9)
    assert all(t[k] == a[k] for k in a if "corpus" in k) and all(t[k] != a[k] for k in a if "test" in k)
    w = files("w", world_seed=99)
    assert all(w[k] != a[k] for k in a if "corpus" in k)
    assert (
        not ReproduceConfig(output=Path("x")).fresh
        and ReproduceConfig(output=Path("x"), world_seed=3, test_seed=4).fresh
    )


def test_per_item_refuses_a_run_that_misses_items(tmp_path: Path) -> None:
    _, plans = _plans(tmp_path, worlds=("knowledge",))
    plan = plans["knowledge"]
    with pytest.raises(ArtifactError, match="missing"):
        worlds.per_item(plan, (0,))
    rows = [json.loads(x) for x in (plan.root / "test.jsonl").read_text().splitlines()]
    for arm in ARMS:
        d = worlds.arm_dir(plan.root, 0, arm)
        d.mkdir(parents=True)
        samples = [{"task": t, "id": r["id"], "tokens_seen": 100, "correct": {"accuracy": True}}
                   for t in plan.tasks for r in rows[1:]]  # fmt: skip
        (d / "eval.samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    with pytest.raises(ArtifactError, match="lacks test items"):
        worlds.per_item(plan, (0,))


def test_makespan_follows_the_list_schedule() -> None:
    from tpt.reproduce.runner import makespan

    assert makespan([3, 3, 2], 2) == 5
    assert makespan([5, 1, 1, 1], 2) == 5


def test_a_job_waits_for_the_jobs_it_needs_and_fails_with_them(tmp_path: Path) -> None:
    from tpt.reproduce.runner import Job, Step, run_jobs

    ok = Job(name="first", steps=(Step(name="s", argv=("--version",)),))
    bad = Job(name="bad", steps=(Step(name="s", argv=("no-such-stage",)),))
    needs_bad = Job(name="needs-bad", steps=(Step(name="s", argv=("--version",)),), after=("bad",))
    with pytest.raises(ArtifactError, match="needs-bad"):
        run_jobs([needs_bad, bad, ok], work_dir=tmp_path, parallel=2, say=lambda m: None)


def test_summary_paths_are_relative_to_the_run_directory(tmp_path: Path) -> None:
    from tpt.reproduce.report import write_outputs

    root = tmp_path / "run"
    root.mkdir()
    summary = {"runs": {"x": {"commands": [["pack", str(root / "aug"), f"--out={root}/p"]]}},
               "dir": str(root), "other": "/elsewhere/file", "command": f"tpt reproduce --output {root} -o={root}",
               "sibling": f"{root}-old"}  # fmt: skip
    write_outputs(root, summary, f"ran `tpt pack {root}/aug`\n")
    text = (root / "summary.json").read_text()
    assert str(root) + "/" not in text and f'{root}"' not in text and f"{root} " not in text
    got = json.loads(text)
    assert got["runs"]["x"]["commands"] == [["pack", "aug", "--out=p"]] and got["dir"] == "."
    assert got["other"] == "/elsewhere/file" and got["command"] == "tpt reproduce --output . -o=."
    assert got["sibling"] == f"{root}-old"  # another directory that starts with the same name is kept


def test_the_llm_teacher_arm_is_opt_in_and_packs_its_own_trajectories(tmp_path: Path) -> None:
    config, plans = _plans(tmp_path)
    assert "tpt-llm" not in plans["arithmetic"].arms  # not in make demo
    config, plans = _plans(tmp_path / "llm", llm_teacher=True, llm_max_thinking_tokens=99)
    assert plans["arithmetic"].arms[-1] == "tpt-llm" and "tpt-llm" not in plans["knowledge"].arms
    jobs = stage.plan_jobs(tmp_path, config.resolved_scale(), plans, tmp_path / "tok")
    teacher = jobs[0]
    assert (
        teacher.name == "arithmetic-augment-llm" and "--backend" not in teacher.steps[0].argv
    )  # the embedded one
    assert teacher.steps[0].argv[teacher.steps[0].argv.index("--max-thinking-tokens") + 1] == "99"
    arm = next(j for j in jobs if j.name == "arithmetic-seed-0-tpt-llm")
    assert arm.after == ("arithmetic-augment-llm",) and arm.steps[0].argv[1].endswith("aug-llm")


def test_flags_become_the_config(capsys) -> None:
    import argparse

    from tpt.cli import main
    from tpt.reproduce.cli import add_arguments, to_config

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["--output", "x", "--world-seed", "20261207", "--test-seed", "7", "--seeds", "3,4",
                         "--worlds", "arithmetic", "--llm-teacher", "--llm-max-thinking-tokens", "64"])  # fmt: skip
    c = to_config(args)
    assert (c.world_seed, c.test_seed, c.seeds, c.worlds) == (20261207, 7, (3, 4), ("arithmetic",))
    assert c.llm_teacher and c.llm_max_thinking_tokens == 64 and c.fresh and c.scale == "default"
    assert main(["reproduce", "--output", "x", "--seeds", "0,a"]) == 2
    assert "--seeds '0,a'" in capsys.readouterr().err
