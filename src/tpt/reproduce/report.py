"""Write `summary.json` and `report.md` of a `tpt reproduce` run from what its runs measured."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from statistics import mean
from typing import Any

from tpt.artifacts import read_json, write_atomic, write_json
from tpt.errors import ArtifactError
from tpt.reproduce.runner import Job

REQUIRED_KEYS = ("data_efficiency", "raw_final_accuracy", "tpt_final_accuracy", "student_accuracy",
                 "weak_teacher_accuracy", "length_intensity_spearman")  # fmt: skip


def stage_configs(job: Job) -> dict[str, Any]:
    """The recorded config of each stage output a job wrote (its manifest.json), by step name."""
    out = {}
    for step in job.steps:
        if "--output" not in step.argv:
            continue
        target = Path(step.argv[step.argv.index("--output") + 1])
        manifest = target / "manifest.json" if target.is_dir() else None
        try:
            out[step.name] = read_json(manifest)["config"] if manifest else {"output": str(target)}
        except (ArtifactError, KeyError):
            out[step.name] = {"output": str(target)}
    return out


def train_speed(run_dir: Path) -> float | None:
    """Mean training tokens per second over the logged steps of a run."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return None
    speeds = [
        json.loads(x).get("tokens_per_second")
        for x in path.read_text(encoding="utf-8").split("\n")
        if x.strip()
    ]
    speeds = [s for s in speeds if s]
    return mean(speeds) if speeds else None


def build_summary(*, scale: dict, corpus: dict, facts: dict, part1: dict | None, part2: dict | None,
                  runs: dict, walls: dict, testbed_levels: dict) -> dict[str, Any]:  # fmt: skip
    s: dict[str, Any] = {key: None for key in REQUIRED_KEYS}
    if part1:
        main = part1["main"]
        s.update(
            data_efficiency=main["mean"],
            data_efficiency_is_upper_bound=main["mean_is_upper_bound"],
            data_efficiency_per_seed={k: v["final"]["factor"] for k, v in main["per_seed"].items()},
            data_efficiency_earlier_stop=main["mean_earlier_stop"],
            data_efficiency_earlier_stop_per_seed={
                k: v["earlier_stop"]["factor"] for k, v in main["per_seed"].items()
            },
            raw_final_accuracy=part1["raw_final_accuracy"],
            tpt_final_accuracy=part1["tpt_final_accuracy"],
            best_mode=part1["best_mode"],
        )
        if "weak_teacher" in part1:
            s.update(
                student_accuracy=part1["weak_teacher"]["student_accuracy"],
                weak_teacher_accuracy=part1["weak_teacher"]["teacher_from_scratch"]["accuracy"],
                weak_teacher_data_efficiency=part1["weak_teacher"]["mean"],
            )
        if "data_constrained" in part1:
            s["data_constrained_efficiency"] = part1["data_constrained"]["mean"]
            s["raw_constrained_final_accuracy"] = part1["data_constrained"][
                "raw_constrained_final_accuracy"
            ]
    if part2:
        s["length_intensity_spearman"] = part2["length_intensity_spearman"]
        s["thinking_tokens_by_domain"] = {
            k: v["mean_thinking_tokens"] for k, v in part2["by_domain"].items()
        }
    s.update(scale=scale, corpus=corpus, testbed=facts, testbed_thinking_words_by_level=testbed_levels,
             part1=part1, part2=part2, runs=runs, wall_time_s=walls)  # fmt: skip
    return s


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def fx(x: float | None, bound: float | None = None) -> str:
    if x is not None:
        return f"{x:.2f}x"
    return f"< {bound:.2f}x (never reached)" if bound is not None else "n/a"


def mean_fx(x: float | None, upper_bound: bool) -> str:
    return f"< {x:.2f}x" if upper_bound and x is not None else fx(x)


def render_report(summary: dict[str, Any], *, out_dir: Path, command: str) -> str:
    """report.md: what was run, what came out, and where each number comes from."""
    sc, p1, p2 = summary["scale"], summary.get("part1"), summary.get("part2")
    L = [f"# TPT reproduction report (`--scale {sc['name']}`)", "",
         f"Made by `{command}`. Every number below is read from the runs under `{out_dir}` "
         "(`runs/seed-S/ARM/{aug,pack,train,eval.jsonl}`); `summary.json` holds them all with each run's config, "
         "and `logs/` the output of every command.", ""]  # fmt: skip
    if p1:
        L += part1_section(summary, p1, sc)
    if p2:
        L += part2_section(p2)
    w = summary["wall_time_s"]
    unmeasured = sorted(k for k, j in w["jobs"].items() if not j.get("cpu_s"))
    L += [
        "## Time",
        "",
        f"This invocation took {w['this_invocation']:.0f} s of wall time (jobs reused from an earlier "
        "invocation count as 0 here; `summary.json` keeps each job's wall and CPU times from the run that did it).",
    ]
    if unmeasured:
        L += [f"No CPU time is on record for {', '.join(unmeasured)} (run by an earlier version of `tpt reproduce`), "
              "so no idle-core estimate is given.", ""]  # fmt: skip
    else:
        L += [f"The jobs used {sum(j.get('cpu_s', 0) for j in w['jobs'].values()):.0f} s of CPU in all; list-scheduled "
              f"{sc['parallel_arms']} at a time with their CPU times as durations (what one-thread jobs take on idle "
              f"cores), plus {w['preparation']:.0f} s of preparation, the whole run comes to about "
              f"**{w['estimated_on_idle_cores'] / 60:.1f} minutes** on {sc['parallel_arms']} idle cores.", ""]  # fmt: skip
    L += ["## Commands", "", "Each arm is these `tpt` commands, run in order in one process (`tpt.cli.main`, "
          "the same code path as typing them):", ""]  # fmt: skip
    for name, run in summary["runs"].items():
        L.append(f"- **{name}** ({run.get('wall_s', 0):.0f} s wall, {run.get('cpu_s', 0):.0f} s CPU"
                 + (f", training at {run['train_tokens_per_second']:.0f} tokens/s"
                 if run.get("train_tokens_per_second") else "") + ")")  # fmt: skip
        L += [f"  - `tpt {shlex.join(c)}`" for c in run["commands"]]
    return "\n".join(L) + "\n"


def part1_section(s: dict[str, Any], p1: dict[str, Any], sc: dict[str, Any]) -> list[str]:
    facts = s["testbed"]
    modes = p1["best_mode"]
    L = ["## Part 1: the reasoning testbed", "",
         f"A {sc['model_size']} student (`tpt train --model-size {sc['model_size']} --preset testbed`) is trained "
         f"from scratch on {sc['tokens_per_arm']:,} tokens per arm, thinking tokens included, and every checkpoint "
         f"is scored by `tpt eval` on {facts['heldout_problems']} held-out problems (no operand tuple of them "
         "appears in any training document) answering directly (`question Answer:`) and thinking first "
         "(`question <think>`); each arm is reported in its best mode "
         f"({', '.join(f'{a}: {m}' for a, m in modes.items())}).", "",
         "**How the arms' corpora relate.** Both arms read the same seeded sequence of documents in the same order. "
         f"The TPT arm gets the first {facts['num_tpt_documents']:,} of them, {100 * s['corpus']['exercise_fraction']:.0f}% of the problems written as "
         "exercises (the question without its answer, solved in the teacher's thinking), each followed by the "
         f"procedural expert's thinking. The raw arm gets the first {facts['num_raw_documents']:,} documents of the same "
         "sequence with every answer stated (so the raw arm is never shown an unanswered question: the conservative "
         "choice), i.e. the TPT arm's documents plus fresh ones until its budget is filled once. "
         "The data-constrained raw arm gets exactly the TPT arm's documents (answers stated) and repeats them.", ""]  # fmt: skip
    runs = s["runs"]
    epochs = {k: v.get("pack", {}).get("epochs") for k, v in runs.items()}
    if any(epochs.values()):
        L += [
            "Epochs over each arm's packed data: "
            + ", ".join(f"{k} {v:.2f}" for k, v in epochs.items() if v)
            + ".",
            "",
        ]
    L += ["### Data efficiency (raw's final accuracy -> tokens TPT needs to reach it)", "",
          "| seed | raw final acc | TPT final acc | raw tokens | TPT tokens | factor | factor at earlier stop |",
          "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for seed, v in p1["main"]["per_seed"].items():
        f, e = v["final"], v["earlier_stop"]
        tpt_final = p1["curves"]["tpt"][seed][modes["tpt"]]["accuracy"][-1]
        tpt_tokens = "-" if f["tpt_tokens"] is None else f"{f['tpt_tokens']:,.0f}"
        L.append(f"| {seed} | {pct(f['target_accuracy'])} | {pct(tpt_final)} | {f['raw_tokens']:,.0f} | "
                 f"{tpt_tokens} | {fx(f['factor'], f['factor_upper_bound'])} | "
                 f"{fx(e['factor'], e['factor_upper_bound'])} (stop {e['stop_tokens']:,}) |")  # fmt: skip
    bound, bound_early = (
        s.get("data_efficiency_is_upper_bound"),
        p1["main"]["mean_earlier_stop_is_upper_bound"],
    )
    L += ["", f"**Mean data-efficiency factor: {mean_fx(s['data_efficiency'], bound)}**"
          + (" (an upper bound: a TPT arm never reached raw's final accuracy; it counts as its bound)" if bound else "")
          + f"; at the earlier stop: {mean_fx(s['data_efficiency_earlier_stop'], bound_early)}. Final accuracy, mean over seeds: "
          f"raw {pct(s['raw_final_accuracy'])}, TPT {pct(s['tpt_final_accuracy'])}.", "",
          "![accuracy against training tokens](plots/accuracy.png)", ""]  # fmt: skip
    L += ["Accuracy at each checkpoint (both modes; best mode in bold):", ""]
    for seed in p1["curves"]["raw"]:
        arms = [a for a in p1["curves"] if seed in p1["curves"][a]]
        cols = [(a, m) for a in arms for m in ("direct", "think") if m in p1["curves"][a][seed]]
        L += [f"seed {seed}:", "", "| tokens | " + " | ".join(f"{a} {m}" for a, m in cols) + " |",
              "| --- " * (len(cols) + 1) + "|"]  # fmt: skip
        tokens = p1["curves"]["raw"][seed][modes["raw"]]["tokens"]
        for i, t in enumerate(tokens):
            cells = []
            for a, m in cols:
                c = p1["curves"][a][seed][m]
                v = pct(c["accuracy"][i]) if i < len(c["accuracy"]) else "-"
                cells.append(f"**{v}**" if m == modes[a] else v)
            L.append(f"| {t:,} | " + " | ".join(cells) + " |")
        L.append("")
    L += ["Final accuracy by reasoning level (best mode):", ""]
    for arm, per_seed in p1["accuracy_by_level_final"].items():
        for seed, by_mode in per_seed.items():
            levels = by_mode.get(modes[arm], {})
            L.append(
                f"- {arm}, seed {seed}: " + ", ".join(f"{k} {pct(v)}" for k, v in levels.items())
            )
    L.append("")
    if "data_constrained" in p1:
        dc = p1["data_constrained"]
        L += ["### Data-constrained setting", "",
              f"The raw arm limited to the TPT arm's {facts['num_tpt_documents']:,} documents, repeating them within "
              f"the same budget: final accuracy {pct(dc['raw_constrained_final_accuracy'])} against TPT's "
              f"{pct(dc['tpt_final_accuracy'])}; factor {mean_fx(dc['mean'], dc['mean_is_upper_bound'])} (mean), " + ", ".join(
                  f"seed {k}: {fx(v['final']['factor'], v['final']['factor_upper_bound'])}" for k, v in dc["per_seed"].items()) + ".", ""]  # fmt: skip
    if "weak_teacher" in p1:
        wt = p1["weak_teacher"]
        L += ["### Student against a weak teacher", "",
              f"The weak teacher slips on {100 * sc['weak_error_rate']:.0f}% of the problems it solves from scratch; "
              "when a document states its answer it checks against it, so its explanations stay correct. "
              f"Solving the {wt['teacher_from_scratch']['n']} held-out problems from scratch (`tpt augment` on them "
              f"as exercises) it scores **{pct(wt['teacher_from_scratch']['accuracy'])}**; the TPT student trained on its "
              f"thinking scores **{pct(wt['student_accuracy'])}** on the same problems "
              f"({'above' if wt['student_accuracy'] > wt['teacher_from_scratch']['accuracy'] else 'not above'} its teacher). "
              f"Its data efficiency against the raw arm: {mean_fx(wt['mean'], wt['mean_is_upper_bound'])}.", ""]  # fmt: skip
    levels = s.get("testbed_thinking_words_by_level") or {}
    if levels:
        L += [
            "The procedural expert's thinking grows with the reasoning a document needs (mean words per "
            "trajectory): " + ", ".join(f"{k} {v:.1f}" for k, v in levels.items()) + ".",
            "",
        ]
    return L


def part2_section(p2: dict[str, Any]) -> list[str]:
    rho = p2["length_intensity_spearman"]
    L = ["## Part 2: real trajectories from the embedded teacher", "",
         f"`tpt augment` with the default backend and teacher ({p2['teacher']}) on {len(p2['documents'])} documents of "
         "the bundled sample corpus. Reasoning intensity is a documented heuristic (reasoning markers plus math symbols "
         "per 100 words; see docs/reproduce.md). "
         f"{p2['cut_by_length_limit']} of {len(p2['documents'])} trajectories hit the thinking-length limit.", "",
         "| domain | documents | mean thinking tokens | median |", "| --- | --- | --- | --- |"]  # fmt: skip
    for domain, v in p2["by_domain"].items():
        L.append(
            f"| {domain} | {v['n']} | {v['mean_thinking_tokens']:.0f} | {v['median_thinking_tokens']:.0f} |"
        )
    L += ["", f"Spearman correlation of thinking length with reasoning intensity: **{'n/a' if rho is None else f'{rho:.2f}'}** "
          f"(n = {len(p2['documents'])}).", "",
          "![thinking length](plots/thinking_length.png)", "", "### Trajectories, verbatim", ""]  # fmt: skip
    for d in pick_examples(p2["documents"]):
        excerpt = d["text"][:400].replace("\n", " ") + (" ..." if len(d["text"]) > 400 else "")
        L += [f"**{d['title']}** ({d['domain']}, intensity {d['reasoning_intensity']:.1f}, {d['thinking_tokens']} thinking "
              f"tokens, finish: {d['finish_reason']})", "", f"> {excerpt}", "", "````text", d["thinking"], "````", ""]  # fmt: skip
    return L


def pick_examples(docs: list[dict[str, Any]], k: int = 3) -> list[dict[str, Any]]:
    """The most reasoning-intense document of each domain, up to k."""
    best: dict[str, dict[str, Any]] = {}
    for d in docs:
        if (
            d["domain"] not in best
            or d["reasoning_intensity"] > best[d["domain"]]["reasoning_intensity"]
        ):
            best[d["domain"]] = d
    return sorted(best.values(), key=lambda d: -d["reasoning_intensity"])[:k]


def write_outputs(out_dir: Path, summary: dict[str, Any], report: str) -> None:
    write_json(out_dir / "summary.json", summary)
    write_atomic(out_dir / "report.md", report)
