"""`preregistration.json`: what a `tpt reproduce` run will conclude from, written before any arm trains.

It names the primary world, each world's primary endpoint and statistic, the contrasts, the estimator, the
seeds (run, world, test, and the development seeds) and the decision rule. Its sha256 (of its canonical
JSON) goes into summary.json; the report's first line is computed from the rule (analysis.decide).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

from tpt.core.artifacts import canonical_json, read_json, write_json
from tpt.core.jsontypes import JSONObject
from tpt.reproduce.analysis import CONTRASTS, PREREGISTERED, preregistered
from tpt.reproduce.config import ReproduceConfig
from tpt.reproduce.presets import DEVELOPMENT_SEEDS, Scale
from tpt.reproduce.worlds import WorldPlan

FILE = "preregistration.json"
ESTIMATOR = {
    "difference": "tpt.compare.estimator.accuracy_difference at the budget (the last checkpoint): seeds paired by "
    "id, t over per-seed differences + item variance stratified by stratum, 95%",
    "factor": "tpt.compare.estimator.factor_interval: tokens the baseline needs to reach its final mean accuracy / "
    "tokens the arm needs (log-linear interpolation; an arm below the baseline gets the baseline's tokens to its "
    "final accuracy / its budget, < 1); t over seeds on the log factor + item bootstrap stratified by stratum, 95%",
}
RULE = ("gain if the 95% interval of the statistic lies above no effect (0 points for a difference, 1 for a "
        "factor), loss if below, else no measurable effect")  # fmt: skip


@dataclass(frozen=True, kw_only=True, slots=True)
class Registration:
    path: Path
    sha256: str


def content(config: ReproduceConfig, scale: Scale, plans: dict[str, WorldPlan]) -> JSONObject:
    return {
        "primary_world": config.worlds[0],
        "primary_contrast": PREREGISTERED[0],
        "worlds": {name: {
            "arms": list(p.arms), "primary_endpoint": p.tasks[0], "secondary_endpoints": list(p.tasks[1:]), "statistic": p.statistic,
            "estimator": ESTIMATOR[p.statistic], "reported_beside": ESTIMATOR["factor" if p.statistic == "difference"
                                                                              else "difference"],
            "contrasts": {k: {"arm": CONTRASTS[k][0], "against": CONTRASTS[k][1]} for k in preregistered(p.arms)},
            **({"thinking_budget": {"tokens": p.thinking_budget, "fraction": config.budget_fraction,
                                    "unit": "the procedural teacher's tokens (words)"}}
               if p.thinking_budget is not None else {}),
            "think_endpoint": p.think_endpoint, "sizing": dataclasses.asdict(scale.worlds[name]),
        } for name, p in plans.items()},
        "checkpoints": "the leading checkpoints at which every run of every arm is at 0.0 are dropped, all but the last",
        "decision_rule": RULE,
        "seeds": {"run": list(scale.seeds), "world_seed": config.world_seed, "test_seed": config.test_seed,
                  "development": {k: list(v) for k, v in DEVELOPMENT_SEEDS.items()}, "fresh": config.fresh},
        "bootstrap_replicates": scale.bootstrap_replicates,
    }  # fmt: skip


def sha256(doc: JSONObject) -> str:
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()


def write(out: Path, config: ReproduceConfig, scale: Scale, plans: dict[str, WorldPlan]) -> Registration:
    """Write preregistration.json (a resumed run finds the same one: the output dir's fingerprint fixes it)."""
    doc = content(config, scale, plans)
    path = out / FILE
    if path.is_file() and sha256(read_json(path)) != sha256(doc):
        # The run directory's fingerprint covers the scale and seeds; only --overwrite-config gets here.
        path.rename(path.with_name(f"preregistration.replaced-{int(path.stat().st_mtime)}.json"))
    if not path.is_file():
        write_json(path, doc)
    return Registration(path=path, sha256=sha256(read_json(path)))
