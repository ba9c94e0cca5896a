"""Write `summary.json` and `report.md` of a `tpt reproduce` run; every path in them relative to the run dir."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from tpt.core.artifacts import write_atomic, write_json
from tpt.core.jsontypes import JSONObject
from tpt.reproduce.analysis import decide, preregistered

REQUIRED_KEYS = ("headline", "primary_endpoint", "arms", "worlds", "preregistration")


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def interval(x: JSONObject, statistic: str) -> str:
    v, (lo, hi) = x["value"], x["ci"]
    if statistic == "difference":
        return f"{100 * v:+.1f} pts [{100 * lo:+.1f}, {100 * hi:+.1f}]"
    if statistic == "accuracy":
        return f"{100 * v:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
    return f"{v:.2f}x [{lo:.2f}, {hi:.2f}]"


def factor_cell(w: JSONObject, c: JSONObject) -> str:
    """The factor, or why it has no meaning: against an arm whose final accuracy is 0 the level to reach is 0,
    which every run reaches at its first checkpoint (the estimator's 1.00x [1.00, 1.00] says nothing)."""
    base = w["arms"][c["against"]][w["primary_endpoint"]]["final_accuracy"]["value"]
    if base == 0:
        return f"undefined ({c['against']} ends at 0%)"
    return interval(c["factor"], "factor")


def world_section(name: str, w: JSONObject, primary: bool) -> list[str]:
    f = w["facts"]
    L = [f"## The {name} world" + (" (primary)" if primary else ""), "",
         f"Primary endpoint `{w['primary_endpoint']}`, pre-registered statistic: **{w['statistic']}** "
         f"({'accuracy of tpt minus the other arm at the budget' if w['statistic'] == 'difference' else 'data-efficiency factor'}). "
         f"Think endpoint: {w['think_endpoint']}. {f['test_items']} test items; budget "
         f"{w['sizing']['tokens_per_arm']:,} tokens per arm; checkpoints kept "
         f"{', '.join(f'{int(t / 1000)}k' for t in w['checkpoints_used'])}.", "",
         "| contrast | statistic | value [95% CI] | verdict | difference at budget | factor |",
         "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for cname, c in w["contrasts"].items():
        tag = "" if cname in preregistered(w["contrasts"]) else " (secondary)"
        L.append(f"| {cname}{tag} | {c['statistic']} | {interval(c, c['statistic'])} | {c['verdict']} | "
                 f"{interval(c['difference'], 'difference')} | {factor_cell(w, c)} |")  # fmt: skip
    if w.get("thinking_budget"):
        tb = w["thinking_budget"]
        spent = "; ".join(f"{arm} spent {a['spent']:,} ({a['allocation']})" for arm, a in tb["arms"].items())
        L += ["", f"Thinking budget of arms tpt-uniform and tpt-difficulty (`--budget-arms`): {tb['budget']:,} "
                  f"teacher tokens, {tb['fraction']:g} x what the unbudgeted oracle writes for the pool; {spent}."]  # fmt: skip
    tasks = list(w["tasks"])  # the primary endpoint first
    strata = sorted(w["arms"]["raw"][tasks[0]]["final_by_stratum"])
    L += ["", "Final accuracy (mean over seeds, 95% CI) and, on the primary endpoint, by stratum:", "",
          "| arm | " + " | ".join(tasks) + " | " + " | ".join(strata) + " |",
          "| --- |" + " --- |" * (len(tasks) + len(strata))]  # fmt: skip
    for arm, by in w["arms"].items():
        cells = [interval(by[t]["final_accuracy"], "accuracy") for t in tasks]
        cells += [pct(by[tasks[0]]["final_by_stratum"][s]) for s in strata]
        L.append(f"| {arm} | " + " | ".join(cells) + " |")
    L += ["", f"![{name}](plots/{name}.png)", ""]
    return L


def time_section(s: JSONObject) -> list[str]:
    t = s["time"]
    L = ["## Time", "", "| job | wall s | CPU s |", "| --- | --- | --- |"]
    L += [f"| {n} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} |" for n, r in s["runs"].items()]
    L += ["", f"CPU in all: {t['cpu_s']:.0f} s; preparation {t['preparation_s']:.0f} s and analysis "
          f"{t['analysis_s']:.0f} s wall; this invocation {t['this_invocation_s']:.0f} s wall."]  # fmt: skip
    if t.get("estimated_idle_wall_s"):
        L.append(f"The jobs' CPU times list-scheduled {t['parallel']} at a time (what one-thread jobs take on idle "
                 f"cores), plus preparation and analysis: about **{t['estimated_idle_wall_s'] / 60:.1f} minutes** on "
                 f"{t['parallel']} idle cores.")  # fmt: skip
    return L + [""]


def render_report(s: JSONObject) -> str:
    """report.md: the decision line first (generated from preregistration.json's rule), then each world."""
    seeds = s["seeds"]
    L = [f"**{s['headline']}**", "", "# TPT reproduction report", "",
         f"Made by `{s['command']}`. Pre-registration: `{s['preregistration']['path']}` (sha256 "
         f"`{s['preregistration']['sha256']}`), written before any arm trained. Run seeds "
         f"{', '.join(map(str, seeds['run_seeds']))}; world seed {seeds['world_seed']}, test seed {seeds['test_seed']} "
         f"({'fresh: no development run used them' if seeds['fresh'] else 'DEVELOPMENT seeds: not a confirmatory run'}; "
         f"development seeds: world {seeds['development']['world_seed']}, test {seeds['development']['test_seed']}).",
         "", "Decision lines, from the pre-registered rule:", ""]  # fmt: skip
    for name, w in s["worlds"].items():
        L += [f"- {decide(name, w, c)}" for c in preregistered(w["contrasts"])]
    L.append("")
    for name, w in s["worlds"].items():
        L += world_section(name, w, name == s["primary_world"])
    L += time_section(s)
    L += ["## Commands", "", "Each job is these `tpt` commands, run in order in one process:", ""]
    for name, r in s["runs"].items():
        L.append(f"- **{name}**")
        L += [f"  - `tpt {shlex.join(c)}`" for c in r["commands"]]
    return "\n".join(L) + "\n"


def relative_paths(value: object, root: Path) -> object:
    """`value` with every string naming a path under `root` made relative to it (argv entries like
    `--output=/abs/path` included), so summary.json carries no path of the machine that made it."""
    prefix = str(root.resolve()).rstrip("/") + "/"
    if isinstance(value, dict):
        return {k: relative_paths(v, root) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [relative_paths(v, root) for v in value]
    if isinstance(value, str):
        value = value.replace(prefix, "")
        # the directory itself, as a whole word (`--output /abs/run --scale x`, `--output=/abs/run`)
        return re.sub(r"(?<![^\s=])" + re.escape(prefix.rstrip("/")) + r"(?=\s|$)", ".", value)
    return value


def write_outputs(out_dir: Path, summary: JSONObject, report: str) -> None:
    write_json(out_dir / "summary.json", relative_paths(summary, out_dir))
    write_atomic(out_dir / "report.md", str(relative_paths(report, out_dir)))
