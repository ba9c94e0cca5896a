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

HELP = (
    "show the TPT effect end to end on a CPU (testbed experiment + real teacher trajectories) and report it"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output", "-o", required=True, type=Path, help="run directory (re-run to resume)")
    p.add_argument(
        "--scale",
        default="default",
        help="quick (~1 min, checks the plumbing), default (`make demo`, measured 20 min 19 s on 2 idle cores), full "
        "(5 seeds, the ablations and Part 2: an hour or more), gpu",
    )
    p.add_argument("--seeds", default=None, help="override the scale's seeds, e.g. 0,1,2")
    p.add_argument(
        "--world-seed",
        type=int,
        default=None,
        help="seed of the world (train/held-out split and pool); default 1234, the development seed",
    )
    p.add_argument(
        "--test-seed",
        type=int,
        default=None,
        help="seed of the held-out test set's draw; default 0, the development seed",
    )
    p.add_argument("--tokens", default=None, help="override the training tokens per arm, e.g. 2M")
    p.add_argument(
        "--parallel", type=int, default=None, help="arms trained at once (default: the scale's, 2)"
    )
    p.add_argument(
        "--no-ablations",
        action="store_true",
        help="skip the ablation arms (exercises, weak teacher) where the scale has them",
    )
    p.add_argument(
        "--no-llm-teacher", action="store_true", help="skip the embedded SmolLM2 teacher and its arm"
    )
    p.add_argument(
        "--no-part2", action="store_true", help="skip Part 2 (the embedded teacher on the sample corpus)"
    )
    p.add_argument(
        "--overwrite-config",
        action="store_true",
        help="continue in a directory made with another scale (finished commands with unchanged "
        "arguments are still reused)",
    )


def resolve_scale(args: argparse.Namespace):
    from tpt.core.errors import ConfigError
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
        changes["ablation_seeds"] = tuple(x for x in scale.ablation_seeds if x in changes["seeds"])
    if args.tokens:
        changes["tokens_per_arm"] = parse_tokens(args.tokens, option="--tokens")
    if args.parallel is not None:
        if args.parallel < 1:
            raise ConfigError(f"--parallel must be >= 1, got {args.parallel}")
        changes["parallel_arms"] = args.parallel
    if args.no_ablations:
        changes["ablation_seeds"] = ()
    if args.no_llm_teacher:
        changes["llm_teacher"] = False
    if args.no_part2:
        changes["part2"] = False
    return dataclasses.replace(scale, **changes) if changes else scale


def corpus_config(args: argparse.Namespace, scale):
    """The scale's corpus, with the world and test seeds the command line names (else the defaults)."""
    from tpt.reproduce.testbed import CorpusConfig

    seeds = {k: v for k in ("world_seed", "test_seed") if (v := getattr(args, k, None)) is not None}
    return CorpusConfig(pool_documents=scale.pool_documents, worked_fraction=scale.worked_fraction, **seeds)


def run(args: argparse.Namespace) -> int:
    from tpt.storage.outputlock import lock_output_dir

    with lock_output_dir(args.output, stage="reproduce"):  # one reproduce per directory (issue 13)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from tpt.cli import main as tpt_main
    from tpt.core.artifacts import claim_output_dir
    from tpt.core.errors import ArtifactError
    from tpt.reproduce import experiment, plots, report, results, trajectories
    from tpt.reproduce.presets import TASKS
    from tpt.reproduce.runner import makespan, run_jobs

    t0 = time.time()
    scale = resolve_scale(args)
    corpus = corpus_config(args, scale)
    out = args.output.resolve()
    command = "tpt reproduce " + shlex.join(
        sys.argv[2:]
        if sys.argv[1:2] == ["reproduce"]
        else [f"--output={args.output}", f"--scale={args.scale}"]
    )
    # Part 2's settings stay out of the fingerprint: its output directory is named after them instead, so
    # changing them redoes Part 2 alone and reuses Part 1.
    part1_scale = {k: v for k, v in scale.as_dict().items() if not k.startswith("part2")}
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

    say(
        f"reproduce: preparing the testbed under {layout.testbed} (primary endpoint: {scale.primary_endpoint})"
    )
    facts = experiment.prepare(layout, scale, corpus)
    jobs = experiment.plan_arms(layout, scale)
    if scale.ablation_seeds:
        rc = tpt_main(experiment.weak_teacher_command(layout, scale))
        if rc != 0:
            raise ArtifactError("the weak teacher's from-scratch run failed; see the messages above")
    part2_aug = None
    if scale.part2:
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
    llm = results.llm_teacher(layout, scale) if scale.llm_teacher else None
    weak = results.weak_teacher_accuracy(layout) if scale.ablation_seeds else None
    part2 = trajectories.collect_part2(part2_aug) if part2_aug else None
    runs = describe_runs(jobs, walls, layout, scale)
    summary = report.build_summary(scale=scale.as_dict(), corpus=dataclasses.asdict(corpus), facts=facts,
                                   part1=part1, llm=llm, weak=weak, part2=part2, runs=runs,
                                   walls={"jobs": walls, "this_invocation": time.time() - t0,
                                          "preparation": prep_s, "estimated_on_idle_cores": quiet_s})  # fmt: skip
    (out / "plots").mkdir(exist_ok=True)
    order = (scale.primary_endpoint, *(t for t in TASKS if t != scale.primary_endpoint))
    plots.plot_accuracy(part1["arms"], order, out / "plots" / "accuracy.png")
    if part2:
        plots.plot_thinking_length(part2, out / "plots" / "thinking_length.png")
    report.write_outputs(out, summary, report.render_report(summary, out_dir=out, command=command))
    say(f"reproduce: {summary['headline']}; report: {out / 'report.md'} ({time.time() - t0:.0f} s)")
    return 0


def part2_job(out: Path, scale):
    """Part 2 as a job: `tpt augment` with the embedded teacher on the whole bundled sample corpus.

    Its directory is named after its settings, so changing them redoes Part 2 without touching Part 1.
    """
    from tpt.reproduce import trajectories
    from tpt.reproduce.runner import Job, Step

    tag = f"think{scale.part2_max_thinking_tokens}-doc{scale.part2_max_doc_tokens}"
    sample, aug = out / "part2" / tag / "sample.jsonl", out / "part2" / tag / "aug"
    docs = trajectories.select_documents(trajectories.sample_corpus_dir(), per_domain=10**6)
    trajectories.write_sample(sample, docs)
    argv = trajectories.augment_command(sample, aug, max_thinking_tokens=scale.part2_max_thinking_tokens,
                                        max_doc_tokens=scale.part2_max_doc_tokens)  # fmt: skip
    step = Step(name="augment", argv=tuple(argv))
    return Job(name=f"part2-embedded-teacher-{tag}", steps=(step,), threads=scale.threads_per_arm), aug


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
            entry["train_tokens_per_second"] = report.train_speed(layout.arm(int(seed), arm) / "train")
        runs[job.name] = entry
    return runs


def remember_walls(path: Path, times: dict) -> dict[str, dict[str, float]]:
    """Wall and CPU seconds of each job from the invocation that ran it (a reused job keeps its first)."""
    from tpt.core.artifacts import write_json

    old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    old = {k: v if isinstance(v, dict) else {"wall_s": float(v), "cpu_s": 0.0} for k, v in old.items()}
    new = {k: {"wall_s": t.wall_s, "cpu_s": t.cpu_s} for k, t in times.items()}
    merged = {**old, **{k: v for k, v in new.items() if v["wall_s"] > 0 or k not in old}}
    write_json(path, merged)
    return merged
