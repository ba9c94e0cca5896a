"""A world's results from its per-item results alone (summary.json's `worlds.NAME.per_item`), through the
one estimator (tpt.compare.estimator): per arm, accuracies with intervals; per contrast, the accuracy
difference at the budget and the data-efficiency factor, with the pre-registered one as its `value`.

Recomputable: `analyse(summary["worlds"][name]["per_item"], ...)` gives `worlds.NAME` back (a test does it).
"""

from __future__ import annotations

from collections.abc import Iterable

from tpt.compare import estimator as est
from tpt.core.jsontypes import JSONObject

CONTRASTS = {"tpt-vs-tpt-shuffled": ("tpt", "tpt-shuffled"), "tpt-vs-raw": ("tpt", "raw"),
             "tpt-vs-tpt-filler": ("tpt", "tpt-filler"), "tpt-llm-vs-raw": ("tpt-llm", "raw"),
             "tpt-difficulty-vs-tpt-uniform": ("tpt-difficulty", "tpt-uniform")}  # fmt: skip
"""name -> (arm, against), each computed when both arms ran. The first two are the pre-registered contrasts
of every world; the others are secondary."""
PREREGISTERED = ("tpt-vs-tpt-shuffled", "tpt-vs-raw")
BUDGET_CONTRAST = "tpt-difficulty-vs-tpt-uniform"
"""Pre-registered too when the run has the budget arms (`--budget-arms`, issue 28): equal generated tokens."""


def preregistered(names: Iterable[str]) -> tuple[str, ...]:
    """The pre-registered contrasts of a world with these arms (or these contrasts: any names)."""
    has = set(names)
    budget = {"tpt-difficulty", "tpt-uniform"} <= has or BUDGET_CONTRAST in has
    return PREREGISTERED + ((BUDGET_CONTRAST,) if budget else ())


def seed_runs(items: JSONObject, arm: str, task: str) -> list[est.SeedRun]:
    levels = tuple(items["strata"])
    return [est.SeedRun(arm, seed, tuple(float(t) for t in r[task]["tokens"]),
                        tuple(tuple(c == "1" for c in row) for row in r[task]["correct"]), levels)
            for seed, r in sorted(items["runs"][arm].items(), key=lambda kv: int(kv[0]))]  # fmt: skip


def informative(items: JSONObject, task: str) -> dict[str, list[est.SeedRun]]:
    """Every arm's runs on `task`, restricted to the checkpoints kept: the leading ones at which every run
    of every arm is at 0.0 are dropped (all but the last of them, the point a crossing starts from)."""
    runs = {arm: seed_runs(items, arm, task) for arm in items["runs"]}
    every = [r for rs in runs.values() for r in rs]
    tokens = est.common_tokens(every)
    keep = [tokens[k] for k in est.informative_checkpoints(every)]
    return {arm: [r.select(keep) for r in rs] for arm, rs in runs.items()}


def _stratum_means(rs: list[est.SeedRun]) -> dict[str, float]:
    levels = rs[0].levels or ()
    out = {}
    for stratum in sorted(set(levels)):
        idx = [k for k, s in enumerate(levels) if s == stratum]
        out[stratum] = sum(sum(r.correct[-1][k] for k in idx) for r in rs) / (len(idx) * len(rs))
    return out


def arm_results(items: JSONObject, tasks: tuple[str, ...]) -> JSONObject:
    out: JSONObject = {arm: {} for arm in items["runs"]}
    for task in tasks:
        for arm, rs in informative(items, task).items():
            budget = est.common_tokens(rs)[-1]
            out[arm][task] = {"final_accuracy": est.accuracy_interval(rs, budget).to_json(),
                              "final_by_stratum": _stratum_means(rs),
                              "curve": [[t, a] for t, a in est.curve(rs)]}  # fmt: skip
    return out


def contrast(
    runs: dict[str, list[est.SeedRun]], arm: str, against: str, *, statistic: str, n_boot: int
) -> JSONObject:
    a, b = runs[arm], runs[against]
    budget = est.common_tokens(a + b)[-1]
    diff = est.accuracy_difference(a, b, budget)
    fac = est.factor_interval(b, a, n_boot=n_boot, seed=0)
    chosen, null = (diff, 0.0) if statistic == "difference" else (fac, 1.0)
    return {"arm": arm, "against": against, "statistic": statistic, "value": chosen.value,
            "ci": [chosen.low, chosen.high], "verdict": est.verdict(chosen, null),
            "difference": {**diff.to_json(), "verdict": est.verdict(diff, 0.0)},
            "factor": {**fac.to_json(), "verdict": est.verdict(fac, 1.0)}}  # fmt: skip


def analyse(items: JSONObject, *, tasks: tuple[str, ...], statistic: str, n_boot: int) -> JSONObject:
    """{primary_endpoint, statistic, checkpoints, arms, contrasts} of one world (tasks[0] is primary)."""
    primary = tasks[0]
    runs = informative(items, primary)
    return {
        "primary_endpoint": primary,
        "statistic": statistic,
        "checkpoints_used": list(est.common_tokens([r for rs in runs.values() for r in rs])),
        "arms": arm_results(items, tasks),
        "contrasts": {name: contrast(runs, a, b, statistic=statistic, n_boot=n_boot)
                      for name, (a, b) in CONTRASTS.items() if a in runs and b in runs},
    }  # fmt: skip


def decide(world: str, result: JSONObject, name: str = "tpt-vs-tpt-shuffled") -> str:
    """A contrast's line from the pre-registered decision rule: gain if the 95% interval of its statistic
    is above no effect (0 for a difference, 1 for a factor), loss if below, else no measurable effect."""
    c = result["contrasts"][name]
    lo, hi = c["ci"]
    word = "gain" if c["verdict"] == "gain" else "loss" if c["verdict"] == "loss" else "no measurable effect"
    if c["statistic"] == "difference":
        fig = f"{c['value'] * 100:+.1f} points [{lo * 100:+.1f}, {hi * 100:+.1f}]"
    else:
        fig = f"{c['value']:.2f}x [{lo:.2f}, {hi:.2f}]"
    return f"{world} world, {c['arm']} vs {c['against']} on {result['primary_endpoint']}: {word} ({fig})"
