"""Arms tpt-uniform / tpt-difficulty (`tpt reproduce --budget-arms`, issue 28): opt-in, one global budget
computed from the corpus before anything runs, the same budget for both allocations, never exceeded by
the real `tpt augment` runs the jobs name, and the contrast pre-registered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tpt.cli import main
from tpt.core.errors import ConfigError
from tpt.reproduce import analysis, budget_arms, oracle_length, prereg, stage
from tpt.reproduce.config import ReproduceConfig


def _plans(out: Path, **kw: object):
    config = ReproduceConfig(output=out, scale="quick", **kw)  # type: ignore[arg-type]
    return config, stage.prepare_worlds(out, config, config.resolved_scale())


def test_budget_arms_are_opt_in_and_each_packs_its_own_budgeted_trajectories(tmp_path: Path) -> None:
    _, plans = _plans(tmp_path / "plain")
    assert all("tpt-uniform" not in p.arms and p.thinking_budget is None for p in plans.values())
    config, plans = _plans(tmp_path / "b", budget_arms=True, budget_fraction=0.5)
    jobs = {j.name: j for j in stage.plan_jobs(tmp_path, config.resolved_scale(), plans, tmp_path / "tok")}
    for w, plan in plans.items():
        assert plan.arms[-2:] == ("tpt-uniform", "tpt-difficulty")
        budgets = set()
        for arm, allocation in budget_arms.BUDGET_ARMS.items():
            aug = jobs[f"{w}-augment-{allocation}"].steps[0].argv
            assert aug[aug.index("--allocation") + 1] == allocation
            budgets.add(aug[aug.index("--thinking-budget") + 1])
            job = jobs[f"{w}-seed-0-{arm}"]
            assert job.after == (f"{w}-augment-{allocation}",)
            assert job.steps[0].argv[1] == aug[aug.index("--output") + 1]
        assert budgets == {str(plan.thinking_budget)}  # equal generated tokens: one budget for both
    with pytest.raises(ConfigError, match="budget-fraction"):
        ReproduceConfig(output=tmp_path, budget_arms=True, budget_fraction=0.0)


def test_the_budget_is_the_fraction_of_what_the_oracle_really_writes_and_holds(tmp_path: Path) -> None:
    config, plans = _plans(tmp_path, budget_arms=True, budget_fraction=0.5)
    jobs = {j.name: j for j in stage.plan_jobs(tmp_path, config.resolved_scale(), plans, tmp_path / "tok")}
    for w, plan in plans.items():
        assert main(list(jobs[f"{w}-augment"].steps[0].argv)) == 0  # the unbudgeted oracle, for real
        full = json.loads((plan.root / "aug" / "summary.json").read_text())["completion_tokens"]
        assert oracle_length.oracle_tokens(plan.root / "corpus.jsonl") == full
        assert plan.thinking_budget == int(0.5 * full)
        for allocation in ("uniform", "difficulty"):
            assert main(list(jobs[f"{w}-augment-{allocation}"].steps[0].argv)) == 0
        spent = budget_arms.spent(plan.root, plan.arms)
        assert set(spent) == {"tpt-uniform", "tpt-difficulty"}
        for arm, s in spent.items():
            assert s["budget"] == plan.thinking_budget and 0 < s["spent"] <= plan.thinking_budget, (w, arm, s)


def test_the_contrast_is_preregistered_only_with_the_arms(tmp_path: Path) -> None:
    config, plans = _plans(tmp_path, budget_arms=True)
    doc = prereg.content(config, config.resolved_scale(), plans)
    for w, plan in plans.items():
        assert analysis.BUDGET_CONTRAST in doc["worlds"][w]["contrasts"]
        assert doc["worlds"][w]["thinking_budget"]["tokens"] == plan.thinking_budget
    config, plans = _plans(tmp_path / "plain")
    doc = prereg.content(config, config.resolved_scale(), plans)
    assert all(analysis.BUDGET_CONTRAST not in w["contrasts"] for w in doc["worlds"].values())
