"""`tpt reproduce`: both worlds x (raw, tpt, tpt-shuffled, tpt-filler) x seeds, as the `tpt` commands a user
types, then the pre-registered contrasts through the one estimator. `run(ReproduceConfig(...)) ->
ReproduceSummary`.

    from tpt.reproduce.config import ReproduceConfig
    from tpt.reproduce.stage import run
    summary = run(ReproduceConfig(output=Path("runs/demo"), world_seed=20261207, test_seed=7))

Order of work: the tokenizer and each world's files (corpus, test items, task file), then
`preregistration.json` (primary world, endpoints, contrasts, statistic, estimator, seeds, decision rule),
then the jobs (reproduce/worlds.py), then the analysis (reproduce/analysis.py) from the per-item results,
which summary.json keeps so that every number in it can be recomputed from it alone.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from tpt.core.artifacts import claim_output_dir, read_json, write_json
from tpt.core.errors import ArtifactError
from tpt.core.jsontypes import JSONObject
from tpt.formats.summaries import ReproduceSummary
from tpt.reproduce import analysis, prereg, worlds
from tpt.reproduce.config import ReproduceConfig
from tpt.reproduce.presets import Scale
from tpt.reproduce.runner import Job, JobTime, makespan, run_jobs

__all__ = ["ReproduceConfig", "run"]


def run(config: ReproduceConfig) -> ReproduceSummary:
    from tpt.storage.outputlock import lock_output_dir

    with lock_output_dir(config.output, stage="reproduce"):  # one reproduce per directory (issue 13)
        return _run(config)


def prepare_worlds(out: Path, config: ReproduceConfig, scale: Scale) -> dict[str, worlds.WorldPlan]:
    from tpt.reproduce import arithmetic, knowledge
    from tpt.reproduce.problems import TYPES
    from tpt.reproduce.testbed import DEFAULT_MIX, CorpusConfig
    from tpt.reproduce.testbed_tokenizer import EOS

    plans = {}
    for name, ws in scale.worlds.items():
        root = out / "worlds" / name
        if name == "knowledge":
            kc = knowledge.KnowledgeConfig(seen=ws.pool, heldout=ws.heldout_entities, world_seed=config.world_seed,
                                           test_seed=config.test_seed)  # fmt: skip
            plans[name] = knowledge.prepare(root, kc, test_per_stratum=ws.test_per_stratum,
                                            max_new_tokens=ws.max_new_tokens, eos=EOS)  # fmt: skip
        else:
            mix = {t: w for t, w in DEFAULT_MIX.items() if t not in TYPES or TYPES[t].level <= ws.max_level}
            cc = CorpusConfig(mix=mix, pool_documents=ws.pool, world_seed=config.world_seed,
                              test_seed=config.test_seed)  # fmt: skip
            plan = arithmetic.prepare(
                root, cc, test_per_stratum=ws.test_per_stratum, max_new_tokens=ws.max_new_tokens
            )
            if config.llm_teacher:
                plan = dataclasses.replace(plan, arms=(*plan.arms, "tpt-llm"),
                                           llm_max_thinking_tokens=config.llm_max_thinking_tokens)  # fmt: skip
            plans[name] = plan
    if config.budget_arms:
        from tpt.reproduce.budget_arms import BUDGET_ARMS
        from tpt.reproduce.oracle_length import budget

        for name, plan in plans.items():
            plans[name] = dataclasses.replace(plan, arms=(*plan.arms, *BUDGET_ARMS),
                                              thinking_budget=budget(plan.root / "corpus.jsonl", config.budget_fraction))  # fmt: skip
    return plans


def _run(config: ReproduceConfig) -> ReproduceSummary:
    from tpt.reproduce.testbed_tokenizer import save_testbed_tokenizer

    t0 = time.time()
    scale = config.resolved_scale()
    out = config.output.resolve()
    fingerprinted = {"scale": dataclasses.asdict(scale), "world_seed": config.world_seed,
                     "test_seed": config.test_seed}  # fmt: skip
    if config.llm_teacher:  # an added arm: runs made without it stay valid
        fingerprinted["llm_max_thinking_tokens"] = config.llm_max_thinking_tokens
    if config.budget_arms:  # added arms, likewise
        fingerprinted["budget_fraction"] = config.budget_fraction
    claim_output_dir(out, stage="reproduce", config={**fingerprinted, "command": config.command},
                     fingerprinted=fingerprinted, override=config.overwrite_config)  # fmt: skip
    say = lambda m: print(m, flush=True)  # noqa: E731 (a one-line printer)
    tokenizer = out / "testbed" / "tokenizer"
    save_testbed_tokenizer(tokenizer)
    plans = prepare_worlds(out, config, scale)
    registration = prereg.write(out, config, scale, plans)  # before any arm trains
    say(f"reproduce: pre-registered {registration.path.name} (sha256 {registration.sha256[:12]})")
    jobs = plan_jobs(out, scale, plans, tokenizer)
    part2_aug = None
    if config.part2:
        job, part2_aug = part2_job(out)
        jobs.append(job)
    prep_s = time.time() - t0
    times = remember_walls(
        out / "state" / "walls.json", run_jobs(jobs, work_dir=out, parallel=scale.parallel, say=say)
    )
    say("reproduce: reading the results")
    t_analysis = time.time()
    results = {}
    for name, plan in plans.items():
        items = worlds.per_item(plan, scale.seeds)
        res = analysis.analyse(
            items, tasks=plan.tasks, statistic=plan.statistic, n_boot=scale.bootstrap_replicates
        )
        results[name] = {**res, "tasks": list(plan.tasks), "think_endpoint": plan.think_endpoint, "facts": plan.facts,
                         "sizing": dataclasses.asdict(scale.worlds[name]), "per_item": items}  # fmt: skip
        if plan.thinking_budget is not None:
            from tpt.reproduce.budget_arms import spent

            results[name]["thinking_budget"] = {"budget": plan.thinking_budget, "fraction": config.budget_fraction,
                                                "arms": spent(plan.root, plan.arms)}  # fmt: skip
    prep_s = {"preparation_s": prep_s, "analysis_s": time.time() - t_analysis}
    return _finish(out, config, scale, registration, results, jobs, times, prep_s, part2_aug, t0)


def _finish(
    out, config, scale, registration, results, jobs, times, prep_s, part2_aug, t0
) -> ReproduceSummary:  # noqa: ANN001
    from tpt.reproduce import plots, report, trajectories

    primary = config.worlds[0]
    headline = analysis.decide(primary, results[primary])
    cpu = [times.get(j.name, {}).get("cpu_s", 0.0) for j in jobs]
    summary: JSONObject = {
        "headline": headline,
        "primary_world": primary,
        "primary_endpoint": results[primary]["primary_endpoint"],
        "arms": results[primary]["arms"],
        "worlds": results,
        "preregistration": {"path": registration.path.name, "sha256": registration.sha256},
        "seeds": {"world_seed": config.world_seed, "test_seed": config.test_seed, "run_seeds": list(scale.seeds),
                  "development": {k: list(v) for k, v in prereg.DEVELOPMENT_SEEDS.items()}, "fresh": config.fresh},
        "scale": dataclasses.asdict(scale),
        "command": config.command,
        "runs": describe_runs(jobs, times),
        "time": {**prep_s, "this_invocation_s": time.time() - t0, "cpu_s": sum(cpu),
                 "estimated_idle_wall_s": sum(prep_s.values()) + makespan(cpu, scale.parallel) if all(cpu) else None,
                 "parallel": scale.parallel},
        "part2": trajectories.collect_part2(part2_aug) if part2_aug else None,
    }  # fmt: skip
    (out / "plots").mkdir(exist_ok=True)
    for name, res in results.items():
        plots.plot_world(name, res, out / "plots" / f"{name}.png")
    report.write_outputs(out, summary, report.render_report(summary))
    print(f"reproduce: {headline}; report: {out / 'report.md'} ({time.time() - t0:.0f} s)", flush=True)
    return ReproduceSummary(output=out, primary_world=primary, headline=headline,
                            verdicts={w: {k: c["verdict"] for k, c in r["contrasts"].items()} for w, r in results.items()},
                            preregistration_sha256=registration.sha256, report=read_json(out / "summary.json"),
                            wall_seconds=time.time() - t0)  # fmt: skip


def plan_jobs(out: Path, scale: Scale, plans: dict[str, worlds.WorldPlan], tokenizer: Path) -> list[Job]:
    """Every world's jobs: the augment jobs first, then the arms, the worlds with the longer budgets first
    (longest jobs first keeps the two cores busy to the end)."""
    per = {name: worlds.jobs(plan, scale.worlds[name], seeds=scale.seeds, tokenizer=tokenizer,
                             eval_batch=scale.eval_batch_size) for name, plan in plans.items()}  # fmt: skip
    order = sorted(per, key=lambda n: -scale.worlds[n].tokens_per_arm)
    first = [j for n in order for j in per[n] if not j.after]  # the augment jobs (the LLM's first)
    return sorted(first, key=lambda j: not j.name.endswith("-llm")) + [
        j for n in order for j in per[n] if j.after
    ]


def part2_job(out: Path) -> tuple[Job, Path]:
    """The embedded SmolLM2 teacher on the whole bundled sample corpus (`tpt augment`, default backend)."""
    from tpt.reproduce import trajectories
    from tpt.reproduce.runner import Step

    sample, aug = out / "part2" / "sample.jsonl", out / "part2" / "aug"
    trajectories.write_sample(
        sample, trajectories.select_documents(trajectories.sample_corpus_dir(), per_domain=10**6)
    )
    argv = trajectories.augment_command(sample, aug, max_thinking_tokens=1024, max_doc_tokens=1024)
    return Job(name="part2-embedded-teacher", steps=(Step(name="augment", argv=tuple(argv)),)), aug


def describe_runs(jobs: list[Job], times: dict[str, dict[str, float]]) -> JSONObject:
    """Per job: its commands, its wall and CPU seconds, and for an arm what its pack holds."""
    out: JSONObject = {}
    for job in jobs:
        entry: JSONObject = {"commands": [list(s.argv) for s in job.steps],
                             **times.get(job.name, {"wall_s": 0.0, "cpu_s": 0.0})}  # fmt: skip
        pack = next((s.argv for s in job.steps if s.name == "pack"), None)
        if pack:
            entry["pack"] = pack_facts(Path(pack[pack.index("--output") + 1]))
        out[job.name] = entry
    return out


def pack_facts(d: Path) -> JSONObject:
    try:
        stats, index = read_json(d / "stats.json"), read_json(d / "index.json")
    except ArtifactError:
        return {}
    keep = ("documents", "document_tokens", "thinking_tokens", "template_tokens", "pad_tokens")
    return {**{k: stats.get(k) for k in keep}, "row_tokens": int(index["num_rows"]) * int(index["seq_len"])}


def remember_walls(path: Path, times: dict[str, JobTime]) -> dict[str, dict[str, float]]:
    """Wall and CPU seconds of each job from the invocation that ran it (a reused job keeps its first)."""
    old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    new = {k: {"wall_s": t.wall_s, "cpu_s": t.cpu_s} for k, t in times.items()}
    merged = {**old, **{k: v for k, v in new.items() if v["wall_s"] > 0 or k not in old}}
    write_json(path, merged)
    return merged
