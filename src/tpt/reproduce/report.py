"""Write `summary.json` and `report.md` of a `tpt reproduce` run from what its runs measured."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from statistics import mean
from typing import Any

from tpt.core.artifacts import read_json, write_atomic, write_json
from tpt.core.errors import ArtifactError
from tpt.reproduce.runner import Job
from tpt.reproduce.testbed_tokenizer import EOS

REQUIRED_KEYS = ("primary_endpoint", "arms", "headline")


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


def build_summary(*, scale: dict, corpus: dict, facts: dict, part1: dict | None, llm: dict | None,
                  weak: dict | None, part2: dict | None, runs: dict, walls: dict) -> dict[str, Any]:  # fmt: skip
    s: dict[str, Any] = {key: None for key in REQUIRED_KEYS}
    if part1:
        s.update(primary_endpoint=part1["primary_endpoint"], arms=part1["arms"], test=part1["test"],
                 headline=headline(part1))  # fmt: skip
    if llm:
        s["llm_teacher"] = llm
    if weak:
        s["weak_teacher"] = weak
    s.update(scale=scale, corpus=corpus, testbed=facts, part2=part2, runs=runs, wall_time_s=walls)
    s["seeds"] = seed_record(corpus)
    return s


def seed_record(corpus: dict) -> dict[str, Any]:
    """This run's world and test seeds, the development seeds, and whether this run used only fresh ones."""
    from tpt.reproduce.presets import DEVELOPMENT_SEEDS

    dev = {k: list(v) for k, v in DEVELOPMENT_SEEDS.items()}
    used = {k: corpus[k] for k in DEVELOPMENT_SEEDS}
    fresh = all(used[k] not in dev[k] for k in dev)
    return {**used, "development": dev, "fresh": fresh}


ARM_LABEL = {"tpt": "oracle thinking", "tpt-llm": "SmolLM2-135M thinking", "tpt-shuffled": "shuffled control",
             "tpt-filler": "filler control (same tokens, no content)",
             "tpt-exercises": "oracle thinking, 30% exercises", "tpt-weak": "weak teacher (7x misconception)",
             "tpt-abundant": "oracle thinking, abundant data (vs raw-abundant)"}  # fmt: skip


def headline(p1: dict[str, Any]) -> str:
    """One sentence that says exactly what was measured on the primary endpoint."""
    parts = []
    for arm, label in ARM_LABEL.items():
        e = p1["arms"].get(arm)
        if not e:
            continue
        f = e["factor_vs_raw"]
        verdict = "" if f["verdict"] == "gain" else f" ({f['verdict']})"
        parts.append(f"{label}: {f['value']:.2f}x [{f['ci'][0]:.2f}, {f['ci'][1]:.2f}]{verdict}")
    return f"data efficiency vs raw on {p1['primary_endpoint']}: " + "; ".join(parts)


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def fx(x: float | None, bound: float | None = None) -> str:
    if x is not None:
        return f"{x:.2f}x"
    return f"< {bound:.2f}x (never reached)" if bound is not None else "n/a"


def mean_fx(x: float | None, upper_bound: bool) -> str:
    return f"< {x:.2f}x" if upper_bound and x is not None else fx(x)


def ci(x: dict[str, Any], *, percent: bool) -> str:
    v = x.get("mean", x.get("value"))
    lo, hi = x["ci"]
    if percent:
        return f"{100 * v:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"
    return f"{v:.2f}x [{lo:.2f}, {hi:.2f}]"


def render_report(summary: dict[str, Any], *, out_dir: Path, command: str) -> str:
    """report.md: the primary endpoint first, then the secondary results, the teachers, and provenance."""
    sc, p2 = summary["scale"], summary.get("part2")
    L = [f"# TPT reproduction report (`--scale {sc['name']}`)", "",
         f"Made by `{command}`. Every number below is read from the runs in this run directory "
         "(`runs/seed-S/ARM/{aug,pack,train,eval.jsonl}`, `teacher/`); `summary.json` holds them all with each run's "
         "config and every curve, and `logs/` the output of every command.", ""]  # fmt: skip
    if summary.get("arms"):
        L += part1_section(summary, sc)
    if summary.get("llm_teacher"):
        L += llm_section(summary)
    if p2:
        L += part2_section(p2)
    w = summary["wall_time_s"]
    unmeasured = sorted(k for k, j in w["jobs"].items() if not j.get("cpu_s"))
    L += ["## Time", "",
          f"This invocation took {w['this_invocation']:.0f} s of wall time (jobs reused from an earlier "
          "invocation count as 0 here; `summary.json` keeps each job's wall and CPU times from the run that did it)."]  # fmt: skip
    if unmeasured:
        L += [f"No CPU time is on record for {', '.join(unmeasured)}, so no idle-core estimate is given.", ""]
    else:
        L += [f"The jobs used {sum(j.get('cpu_s', 0) for j in w['jobs'].values()):.0f} s of CPU in all; list-scheduled "
              f"{sc['parallel_arms']} at a time with their CPU times as durations (what one-thread jobs take on idle "
              f"cores), plus {w['preparation']:.0f} s of preparation, the whole run comes to about "
              f"**{w['estimated_on_idle_cores'] / 60:.1f} minutes** on {sc['parallel_arms']} idle cores.", ""]  # fmt: skip
    L += ["## Commands", "", "Each job is these `tpt` commands, run in order in one process (`tpt.cli.main`, "
          "the same code path as typing them):", ""]  # fmt: skip
    for name, run in summary["runs"].items():
        L.append(f"- **{name}** ({run.get('wall_s', 0):.0f} s wall, {run.get('cpu_s', 0):.0f} s CPU"
                 + (f", training at {run['train_tokens_per_second']:.0f} tokens/s"
                 if run.get("train_tokens_per_second") else "") + ")")  # fmt: skip
        L += [f"  - `tpt {shlex.join(c)}`" for c in run["commands"]]
    return "\n".join(L) + "\n"


def part1_section(s: dict[str, Any], sc: dict[str, Any]) -> list[str]:
    facts, arms, primary = s["testbed"], s["arms"], s["primary_endpoint"]
    seeds = arms["raw"]["seeds"]
    L = ["## Part 1: the reasoning testbed", "",
         f"**Primary endpoint, fixed before training: `{primary}`** (the same `tpt eval` task, prompt, extraction and "
         f"greedy decoding for every arm). {len(seeds)} seeds; {s['test']['problems']} held-out problems, "
         + ", ".join(f"{k}: {v} distinct computations" for k, v in s["test"]["distinct_computations"].items())
         + f". Every arm trains on the same {facts['pool_documents']} pool documents for "
         f"{sc['tokens_per_arm']:,} tokens. Intervals: 95% bootstrap over seeds and test problems (clustered by "
         "computation); a factor whose interval includes 1 is reported as no measurable effect.", "",
         f"**{s['headline']}**", "",
         "| arm | teacher | final accuracy | factor vs raw | per seed | verdict |", "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for arm, e in arms.items():
        if "factor_vs_raw" not in e:
            L.append(f"| {arm} | none | {ci(e['final_accuracy'], percent=True)} | (baseline) | | |")
            continue
        f = e["factor_vs_raw"]
        per = ", ".join(
            f"{v:.2f}x" + ("" if f["reached_raw_final"][k] else " (bound)") for k, v in f["per_seed"].items()
        )
        verdict = f["verdict"]
        vs = "" if e.get("baseline", "raw") == "raw" else f" (vs {e['baseline']})"
        L.append(
            f"| {arm} | {e['teacher']} | {ci(e['final_accuracy'], percent=True)} | {ci(f, percent=False)}{vs} | {per} | {verdict} |"
        )
    L += ["", "Secondary endpoints (the same runs, other `tpt eval` tasks of the same task file):", "",
          "| arm | " + " | ".join(t for t in TASK_ORDER if t != primary) + " |", "| --- |" + " --- |" * (len(TASK_ORDER) - 1)]  # fmt: skip
    for arm, e in arms.items():
        cells = []
        for t in TASK_ORDER:
            if t == primary:
                continue
            x = e["tasks"][t]
            cell = ci(x["final_accuracy"], percent=True)
            if "factor_vs_raw" in x:
                cell += f"; {ci(x['factor_vs_raw'], percent=False)}"
            cells.append(cell)
        L.append(f"| {arm} | " + " | ".join(cells) + " |")
    if all("gold_loglik" in e for e in arms.values()):
        L += ["", "Low-variance measure: mean log-likelihood (nats) of the gold answer after `question Answer:` "
              "(task testbed-direct), final checkpoint, 95% interval over seeds and problems (closer to 0 is better):", "",
              "| arm | gold answer log-likelihood |", "| --- | --- |"]  # fmt: skip
        for arm, e in arms.items():
            g = e["gold_loglik"]
            L.append(f"| {arm} | {g['mean']:.3f} [{g['ci'][0]:.3f}, {g['ci'][1]:.3f}] |")
    L += ["", f"Final accuracy by level on `{primary}` (mean over seeds):", "",
          "| arm | " + " | ".join(sorted(arms['raw']['tasks'][primary]['final_by_level'])) + " |",
          "| --- |" + " --- |" * len(arms["raw"]["tasks"][primary]["final_by_level"])]  # fmt: skip
    for arm, e in arms.items():
        lv = e["tasks"][primary]["final_by_level"]
        L.append(f"| {arm} | " + " | ".join(pct(v) for _, v in sorted(lv.items())) + " |")
    L += ["", "![accuracy](plots/accuracy.png)", ""]
    if s.get("weak_teacher"):
        w = s["weak_teacher"]
        L += [f"Weak teacher (a consistent 7x misconception), solving the held-out problems from scratch: "
              f"{pct(w['accuracy'])} (n = {w['n']}); its student: {ci(arms['tpt-weak']['final_accuracy'], percent=True)}.", ""]  # fmt: skip
    return L


TASK_ORDER = ("testbed-cot", "testbed-direct", "testbed-think")


def llm_section(s: dict[str, Any]) -> list[str]:
    t = s["llm_teacher"]
    q = t["quality"]
    L = ["## The real teacher: SmolLM2-135M-Instruct", "",
         f"It wrote one trajectory per pool document ({q['trajectories']}) with the paper's prompt and decoding, from "
         f"the text alone, at most {s['scale']['llm_max_thinking_tokens']} tokens each "
         f"({pct(q['hit_length_limit_share'])} hit that cap; mean {q['mean_thinking_words']:.0f} words). Of its "
         f"{q['arithmetic_statements']} arithmetic statements (`a op b = c`), {pct(q['arithmetic_correct_share'])} are "
         f"right; {pct(q['reaches_document_answer_share'])} of its trajectories state the document's answer (which the "
         f"document shows). The student tokenizer covers {pct(q['student_tokenizer_word_coverage'])} of its words "
         "(the rest become `<unk>`).", "",
         "Teacher against its student, like for like (the same task file, prompt, extraction and greedy decoding):", "",
         "| task | SmolLM2-135M (teacher) | its student (tpt-llm, final) |", "| --- | --- | --- |"]  # fmt: skip
    student = s["arms"].get("tpt-llm", {}).get("tasks", {})
    for task, acc in t["accuracy_on_heldout"].items():
        st = student.get(task, {}).get("final_accuracy")
        L.append(f"| {task} | {ci(acc, percent=True)} | {ci(st, percent=True) if st else 'n/a'} |")
    L += ["", "What it writes on held-out problems under that prompt, verbatim:", ""]
    for ex in t.get("answers_on_test", []):
        L += [f"> {ex['prompt'].replace(EOS, '')} (gold {ex['gold']}, {'right' if ex['correct'] else 'wrong'})", "",
              "````text", ex["generation"], "````", ""]  # fmt: skip
    L += ["Three of its trajectories on pool documents, verbatim:", ""]
    for ex in t["examples"]:
        L += [f"> {ex['document']}", "", "````text", ex["thinking"], "````", ""]
    return L


def part2_section(p2: dict[str, Any]) -> list[str]:
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
    L += ["", "No correlation of length with reasoning intensity is reported: the bundled sample corpus has "
          f"{len(p2['documents'])} documents, fewer than the 100 a rank correlation over three domains needs to "
          "say anything, and the embedded teacher's lengths are censored by its cap where it hits it.", "",
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
        if d["domain"] not in best or d["reasoning_intensity"] > best[d["domain"]]["reasoning_intensity"]:
            best[d["domain"]] = d
    return sorted(best.values(), key=lambda d: -d["reasoning_intensity"])[:k]


def relative_paths(value: Any, root: Path) -> Any:
    """`value` with every string that names a path under `root` made relative to it (argv entries like
    `--output=/abs/path` included), so summary.json carries no path of the machine that made it."""
    prefix = str(root.resolve()).rstrip("/") + "/"
    if isinstance(value, dict):
        return {k: relative_paths(v, root) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [relative_paths(v, root) for v in value]
    if isinstance(value, str) and prefix in value:
        return value.replace(prefix, "")
    if isinstance(value, str) and value == prefix.rstrip("/"):
        return "."
    return value


def write_outputs(out_dir: Path, summary: dict[str, Any], report: str) -> None:
    write_json(out_dir / "summary.json", relative_paths(summary, out_dir))
    write_atomic(out_dir / "report.md", relative_paths(report, out_dir))
