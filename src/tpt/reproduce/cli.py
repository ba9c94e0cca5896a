"""`tpt reproduce --output DIR`: the end-to-end demo of the TPT effect (Part 1) and of real trajectories
(Part 2), run through the same `tpt` commands a user runs by hand; re-running reuses finished commands."""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

HELP = "show the TPT effect end to end on a CPU (testbed experiment + real teacher trajectories) and report it"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--output", "-o", required=True, type=Path, help="run directory (re-run to resume)"
    )
    p.add_argument(
        "--scale",
        default="default",
        help="quick (~2 min, checks the plumbing), default (`make demo`, <= 20 min on 2 cores), gpu",
    )
    p.add_argument("--seeds", default=None, help="override the scale's seeds, e.g. 0,1,2")
    p.add_argument("--tokens", default=None, help="override the training tokens per arm, e.g. 2M")
    p.add_argument(
        "--parallel", type=int, default=None, help="arms trained at once (default: the scale's, 2)"
    )
    p.add_argument(
        "--no-extra-arms",
        action="store_true",
        help="skip the data-constrained raw arm and the weak-teacher arm",
    )
    p.add_argument(
        "--no-part2", action="store_true", help="skip Part 2 (the embedded teacher's trajectories)"
    )
    p.add_argument(
        "--overwrite-config",
        action="store_true",
        help="continue in a directory made with another scale (finished commands with unchanged "
        "arguments are still reused)",
    )


def resolve_scale(args: argparse.Namespace):
    from tpt.errors import ConfigError
    from tpt.reproduce.presets import get_scale
    from tpt.train.config import parse_tokens

    scale = get_scale(args.scale)
    changes: dict = {}
    if args.seeds:
        try:
            changes["seeds"] = tuple(int(s) for s in args.seeds.split(","))
        except ValueError:
            raise ConfigError(
                f"--seeds {args.seeds!r}: expected comma-separated integers, e.g. 0,1"
            ) from None
        changes["extra_arm_seeds"] = (
            tuple(s for s in scale.extra_arm_seeds if s in changes["seeds"]) or changes["seeds"][:1]
        )
    if args.tokens:
        changes["tokens_per_arm"] = parse_tokens(args.tokens, option="--tokens")
    if args.parallel is not None:
        if args.parallel < 1:
            raise ConfigError(f"--parallel must be >= 1, got {args.parallel}")
        changes["parallel_arms"] = args.parallel
    if args.no_extra_arms:
        changes["extra_arm_seeds"] = ()
    return dataclasses.replace(scale, **changes) if changes else scale


def run(args: argparse.Namespace) -> int:
    from tpt.outputlock import lock_output_dir

    with lock_output_dir(args.output, stage="reproduce"):  # one reproduce per directory (issue 13)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from tpt.artifacts import claim_output_dir
    from tpt.cli import main as tpt_main
    from tpt.errors import ArtifactError
    from tpt.reproduce import experiment, plots, report, results, trajectories
    from tpt.reproduce.runner import makespan, run_jobs
    from tpt.reproduce.testbed import CorpusConfig

    t0 = time.time()
    scale = resolve_scale(args)
    corpus = CorpusConfig()
    out = args.output.resolve()
    command = "tpt reproduce " + shlex.join(
        sys.argv[2:]
        if sys.argv[1:2] == ["reproduce"]
        else [f"--output={args.output}", f"--scale={args.scale}"]
    )
    # Part 2's settings stay out of the fingerprint: its output directory is named after them instead, so
    # changing them redoes Part 2 alone and reuses Part 1.
    part1_scale = {k: v for k, v in scale.as_dict().items() if not k.startswith("part2_")}
    fingerprinted = {"scale": part1_scale, "corpus": dataclasses.asdict(corpus)}
    claim_output_dir(
        out,
        stage="reproduce",
        config={**fingerprinted, "command": command},
        fingerprinted=fingerprinted,
        override=args.overwrite_config,
    )
    layout = experiment.Layout(root=out)
    say = lambda m: print(m, flush=True)  # noqa: E731 (a one-line printer)

    say(f"reproduce: preparing the testbed under {layout.testbed}")
    facts = experiment.prepare(layout, scale, corpus)
    jobs = experiment.plan_arms(layout, scale, num_tpt_documents=facts["num_tpt_documents"])
    if scale.extra_arm_seeds:
        rc = tpt_main(experiment.weak_teacher_command(layout, scale))
        if rc != 0:
            raise ArtifactError(
                "the weak teacher's from-scratch run failed; see the messages above"
            )
    part2_aug = None
    if not args.no_part2:
        job, part2_aug = part2_job(out, scale)
        jobs.append(job)
    prep_s = time.time() - t0
    walls = run_jobs(jobs, work_dir=out, parallel=scale.parallel_arms, say=say)
    walls = remember_walls(out / "state" / "walls.json", walls)
    # What the jobs would take on otherwise idle cores: each one-thread job's CPU time, list-scheduled.
    cpu = [walls.get(j.name, {}).get("cpu_s", 0.0) for j in jobs]
    quiet_s = prep_s + makespan(cpu, scale.parallel_arms) if all(cpu) else None

    say("reproduce: reading the results")
    part1 = results.collect_part1(layout, scale)
    part2 = trajectories.collect_part2(part2_aug) if part2_aug else None
    runs = describe_runs(jobs, walls, layout, scale)
    levels = testbed_thinking_by_level(layout.arm(scale.seeds[0], "tpt") / "aug")
    summary = report.build_summary(scale=scale.as_dict(), corpus=dataclasses.asdict(corpus), facts=facts,
                                   part1=part1, part2=part2, runs=runs, walls={"jobs": walls, "this_invocation": time.time() - t0,
                                          "preparation": prep_s, "estimated_on_idle_cores": quiet_s},
                                   testbed_levels=levels)  # fmt: skip
    (out / "plots").mkdir(exist_ok=True)
    plots.plot_accuracy(part1, out / "plots" / "accuracy.png")
    if part2:
        plots.plot_thinking_length(part2, levels, out / "plots" / "thinking_length.png")
    report.write_outputs(out, summary, report.render_report(summary, out_dir=out, command=command))
    eff = report.mean_fx(summary["data_efficiency"], summary["data_efficiency_is_upper_bound"])
    say(f"reproduce: data efficiency {eff} (mean of {len(scale.seeds)} seeds), raw {summary['raw_final_accuracy']:.1%} "
        f"-> TPT {summary['tpt_final_accuracy']:.1%}; report: {out / 'report.md'} ({time.time() - t0:.0f} s)")  # fmt: skip
    return 0


def part2_job(out: Path, scale):
    """Part 2 as a job: `tpt augment` with the embedded teacher on a seeded sample of the bundled corpus.

    Its directory is named after its settings, so changing them redoes Part 2 without touching Part 1.
    """
    from tpt.reproduce import trajectories
    from tpt.reproduce.runner import Job, Step

    tag = f"docs{scale.part2_docs_per_domain}-think{scale.part2_max_thinking_tokens}-doc{scale.part2_max_doc_tokens}"
    sample, aug = out / "part2" / tag / "sample.jsonl", out / "part2" / tag / "aug"
    docs = trajectories.select_documents(
        trajectories.sample_corpus_dir(), per_domain=scale.part2_docs_per_domain
    )
    trajectories.write_sample(sample, docs)
    argv = trajectories.augment_command(sample, aug, max_thinking_tokens=scale.part2_max_thinking_tokens,
                                        max_doc_tokens=scale.part2_max_doc_tokens)  # fmt: skip
    step = Step(name="augment", argv=tuple(argv))
    return Job(
        name=f"part2-embedded-teacher-{tag}", steps=(step,), threads=scale.threads_per_arm
    ), aug


def describe_runs(jobs: list, walls: dict, layout, scale) -> dict:
    """Per job: its commands, each stage's recorded config, its times; per arm also its data and speed."""
    from tpt.reproduce import report, results

    runs = {}
    for job in jobs:
        entry = {"commands": [list(s.argv) for s in job.steps], "configs": report.stage_configs(job),
                 **walls.get(job.name, {"wall_s": 0.0, "cpu_s": 0.0})}  # fmt: skip
        if job.name.startswith("seed-"):
            seed, arm = job.name.removeprefix("seed-").split("-", 1)
            entry["pack"] = results.pack_facts(layout, scale, int(seed), arm)
            entry["train_tokens_per_second"] = report.train_speed(
                layout.arm(int(seed), arm) / "train"
            )
        runs[job.name] = entry
    return runs


def remember_walls(path: Path, times: dict) -> dict[str, dict[str, float]]:
    """Wall and CPU seconds of each job from the invocation that ran it (a reused job keeps its first)."""
    from tpt.artifacts import write_json

    old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    old = {
        k: v if isinstance(v, dict) else {"wall_s": float(v), "cpu_s": 0.0} for k, v in old.items()
    }
    new = {k: {"wall_s": t.wall_s, "cpu_s": t.cpu_s} for k, t in times.items()}
    merged = {**old, **{k: v for k, v in new.items() if v["wall_s"] > 0 or k not in old}}
    write_json(path, merged)
    return merged


def testbed_thinking_by_level(aug_dir: Path) -> dict[str, float]:
    """Mean words of the procedural expert's thinking per testbed level, from an arm's augment output."""
    sums: dict[str, list[int]] = {}
    for shard in sorted((aug_dir / "shards").glob("*.jsonl")):
        if shard.name.endswith(".failures.jsonl"):
            continue
        with open(shard, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                sums.setdefault(rec["meta"]["domain"], []).append(len(rec["thinking"].split()))
    return {k: sum(v) / len(v) for k, v in sorted(sums.items())}
