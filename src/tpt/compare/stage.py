"""`tpt compare`: arms of evaluated training runs against a baseline. `run(CompareConfig(...)) -> CompareSummary`.

    from tpt.compare.config import CompareConfig
    from tpt.compare.stage import run
    summary = run(CompareConfig(arms=(("raw", ("eval/raw.jsonl",)), ("tpt", ("eval/tpt.jsonl",))),
                                baseline="raw", output="eval/compare"))

Per task: every arm's accuracy curve over training tokens (mean and range over seeds), each arm's
data-efficiency factor against the baseline with its interval, the accuracy of every arm at the largest
token count all runs have (and its difference from the baseline), and a verdict per contrast. The
statistics are tpt.compare.estimator's (one implementation with `tpt reproduce`). Writes compare.json,
compare.md and, per task, a PNG.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from tpt.compare import estimator as est
from tpt.compare.config import CompareConfig
from tpt.compare.inputs import EvaluatedRun, differing, flat, load_arm, read_levels
from tpt.core.artifacts import write_atomic, write_json
from tpt.core.errors import InputError, MissingDependencyError
from tpt.core.jsontypes import JSONObject
from tpt.formats.summaries import CompareSummary

_STDERR: Any = object()


def _ignored(key: str, ignore: tuple[str, ...]) -> bool:
    return any(key == f or key.startswith(f + ".") for f in ignore)


def _check_settings(task: str, runs: list[EvaluatedRun], ignore: tuple[str, ...]) -> None:
    first = runs[0]
    ref = first.tasks[task].settings
    for r in runs[1:]:
        keys = [k for k in differing(ref, r.tasks[task].settings) if not _ignored(k, ignore)]
        if keys:
            a, b = flat(ref), flat(r.tasks[task].settings)
            shown = "; ".join(f"{k}: {a.get(k, '<absent>')!r} vs {b.get(k, '<absent>')!r}" for k in keys[:3])
            raise InputError(
                f"task {task}: runs {first.label} and {r.label} were scored with different eval settings ({shown}); "
                "score them the same way, or pass --ignore-setting FIELD if the difference cannot change scores"
            )
    metrics = {r.tasks[task].metric for r in runs}
    if len(metrics) > 1:
        raise InputError(
            f"task {task}: the runs' primary metrics differ ({', '.join(sorted(metrics))}); pass --metric"
        )


def _check_items(task: str, runs: list[EvaluatedRun]) -> None:
    first = runs[0]
    ids = first.tasks[task].ids
    for r in runs[1:]:
        other = r.tasks[task].ids
        if other != ids:
            only = sorted(set(ids) - set(other)) or sorted(set(other) - set(ids))
            side = first.label if set(ids) - set(other) else r.label
            example = f"; e.g. item {only[0]!r} only in {side}" if only else ""
            raise InputError(
                f"task {task}: runs {first.label} and {r.label} were scored on different items "
                f"({len(ids)} vs {len(other)}{example}); score every run on the same test items"
            )


def _choose_tasks(
    runs: list[EvaluatedRun], wanted: tuple[str, ...]
) -> tuple[list[str], dict[str, list[str]]]:
    if wanted:
        for t in wanted:
            lacking = [r.label for r in runs if t not in r.tasks]
            if lacking:
                raise InputError(
                    f"task {t}: not scored for run {lacking[0]} (it has {', '.join(sorted(runs[0].tasks))})"
                )
        return list(wanted), {}
    shared = set(runs[0].tasks)
    for r in runs[1:]:
        shared &= set(r.tasks)
    every = sorted({t for r in runs for t in r.tasks})
    if not shared:
        a = runs[0]
        b = next(r for r in runs[1:] if not set(r.tasks) & set(a.tasks)) if len(runs) > 1 else a
        raise InputError(
            f"different tasks: run {a.label} was scored on {', '.join(sorted(a.tasks))} and run {b.label} on "
            f"{', '.join(sorted(b.tasks))}; no task is common to every run"
        )
    skipped = {t: [r.label for r in runs if t not in r.tasks] for t in every if t not in shared}
    return sorted(shared), skipped


def _seed_runs(task: str, runs: list[EvaluatedRun], levels: tuple[str, ...] | None) -> list[est.SeedRun]:
    return [
        est.SeedRun(
            r.arm, r.seed, tuple(float(t) for t in r.tasks[task].tokens), r.tasks[task].correct, levels
        )
        for r in runs
    ]


def _task_levels(
    task: str, ids: tuple[str, ...], levels: dict[str, str] | None, path: object
) -> tuple[str, ...] | None:
    if levels is None:
        return None
    missing = [i for i in ids if i not in levels]
    if missing:
        raise InputError(
            f"task {task}: item {missing[0]!r} has no level in {path} ({len(missing)} of {len(ids)} missing)"
        )
    return tuple(levels[i] for i in ids)


def _curve(runs: list[est.SeedRun]) -> JSONObject:
    tokens = est.common_tokens(runs)
    per_seed = {r.seed: [a for t, a in zip(r.tokens, r.accuracy(), strict=True) if t in tokens] for r in runs}
    cols = list(zip(*per_seed.values(), strict=True))
    return {
        "tokens": [int(t) for t in tokens],
        "mean": [sum(c) / len(c) for c in cols],
        "low": [min(c) for c in cols],
        "high": [max(c) for c in cols],
        "per_seed": per_seed,
        "per_seed_tokens": {r.seed: [int(t) for t in r.tokens] for r in runs},
    }


def _fmt_tokens(t: float) -> str:
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if t >= div:
            return f"{t / div:.3g}{unit}"
    return f"{t:g}"


def verdict_line(task: str, arm: str, baseline: str, c: JSONObject) -> str:
    f, d = c["factor"], c["accuracy_difference"]
    pct = 100 * c["confidence"]
    return (
        f"{task}, {arm} vs {baseline}: {c['verdict']} - data-efficiency factor {f['value']:.2f}x "
        f"[{f['ci'][0]:.2f}, {f['ci'][1]:.2f}] ({pct:g}% interval, {f['n_seeds']} seed(s), {f['n_items']} items); "
        f"accuracy at {_fmt_tokens(c['tokens'])} tokens {100 * d['value']:+.1f} points "
        f"[{100 * d['ci'][0]:+.1f}, {100 * d['ci'][1]:+.1f}] ({c['difference_verdict']})"
    )


def compare_task(
    task: str,
    by_arm: dict[str, list[EvaluatedRun]],
    config: CompareConfig,
    levels: dict[str, str] | None = None,
) -> JSONObject:
    """The statistics of one task (the `tasks[task]` entry of compare.json)."""
    runs = [r for rs in by_arm.values() for r in rs]
    _check_settings(task, runs, config.ignore_settings)
    _check_items(task, runs)
    strata = _task_levels(task, runs[0].tasks[task].ids, levels, config.levels)
    seeds = {arm: _seed_runs(task, rs, strata) for arm, rs in by_arm.items()}
    everyone = [r for rs in seeds.values() for r in rs]
    try:
        common = est.common_tokens(everyone)
    except InputError:
        shown = "; ".join(
            f"{r.arm}/{r.seed}: {', '.join(_fmt_tokens(t) for t in r.tokens)}" for r in everyone[:4]
        )
        raise InputError(
            f"task {task}: the runs have no checkpoint at a common token count ({shown}); train them with the "
            "same --save-at (or --save-every) points"
        ) from None
    at = common[-1]
    base = seeds[config.baseline]
    arms: JSONObject = {}
    for arm, rs in seeds.items():
        arms[arm] = {
            "seeds": [r.seed for r in rs],
            "curve": _curve(rs),
            "accuracy_at_common": est.accuracy_interval(rs, at, confidence=config.confidence).to_json(),
        }
    target = est.curve(base)[-1][1]
    contrasts: JSONObject = {}
    for arm, rs in seeds.items():
        if arm == config.baseline:
            continue
        factor = est.factor_interval(
            base, rs, n_boot=config.bootstrap, seed=config.seed, confidence=config.confidence
        )
        diff = est.accuracy_difference(rs, base, at, confidence=config.confidence)
        reached = {
            r.seed: est.tokens_to_reach(list(zip(r.tokens, r.accuracy(), strict=True)), target) is not None
            for r in rs
        }
        entry = {
            "arm": arm,
            "baseline": config.baseline,
            "confidence": config.confidence,
            "target_accuracy": target,
            "reached_target": reached,
            "factor": factor.to_json(),
            "verdict": est.verdict(factor, 1.0),
            "tokens": int(at),
            "accuracy_difference": diff.to_json(),
            "difference_verdict": est.verdict(diff, 0.0),
        }
        entry["verdict_line"] = verdict_line(task, arm, config.baseline, entry)
        contrasts[f"{arm}-vs-{config.baseline}"] = entry
    first = runs[0].tasks[task]
    return {
        "metric": first.metric,
        "n_items": len(first.ids),
        "eval_settings": first.settings,
        "strata": {lv: strata.count(lv) for lv in sorted(set(strata))} if strata else None,
        "common_tokens": [int(t) for t in common],
        "largest_common_tokens": int(at),
        "arms": arms,
        "contrasts": contrasts,
    }


def _check_plotting() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise MissingDependencyError(
            "matplotlib", "tpt compare's plots (or pass --no-plots)", extra="plot"
        ) from None


def run(config: CompareConfig, *, log: Any = _STDERR) -> CompareSummary:
    """Read every arm's runs, compare each task, write compare.json, compare.md and the plots.

    The output directory is locked for the call (a second `tpt compare` into it fails at once).
    """
    from tpt.storage.outputlock import lock_output_dir

    started = time.monotonic()
    log = sys.stderr if log is _STDERR else log
    if config.plots:
        _check_plotting()
    with lock_output_dir(config.output, stage="compare"):
        return _run(config, log, started)


def _run(config: CompareConfig, log: Any, started: float) -> CompareSummary:
    by_arm = {
        name: load_arm(name, members, results=config.results, metric=config.metric)
        for name, members in config.arms
    }
    runs = [r for rs in by_arm.values() for r in rs]
    owner: dict[str, str] = {}
    for r in runs:
        if r.model in owner and owner[r.model] != r.arm:
            raise InputError(f"run {r.model} is in two arms ({owner[r.model]} and {r.arm})")
        owner[r.model] = r.arm
    tasks, skipped = _choose_tasks(runs, config.tasks)
    levels = read_levels(config.levels, config.level_field) if config.levels is not None else None
    report: JSONObject = {
        "baseline": config.baseline,
        "arms": {
            name: [
                {"model": r.model, "seed": r.seed, "seed_from": r.seed_from, "source": str(r.source)}
                for r in rs
            ]
            for name, rs in by_arm.items()
        },
        "settings": {
            "metric": config.metric,
            "confidence": config.confidence,
            "bootstrap": config.bootstrap,
            "seed": config.seed,
            "ignore_settings": list(config.ignore_settings),
            "levels": str(config.levels) if config.levels is not None else None,
            "level_field": config.level_field,
        },  # fmt: skip
        "tasks_skipped": skipped,
        "tasks": {},
    }
    for task in tasks:
        report["tasks"][task] = compare_task(task, by_arm, config, levels)
        for c in report["tasks"][task]["contrasts"].values():
            _say(log, f"[compare] {c['verdict_line']}")
    out = config.output
    files = [out / "compare.json", out / "compare.md"]
    if config.plots:
        from tpt.compare.plots import plot_task

        for task, entry in report["tasks"].items():
            files.append(plot_task(task, entry, config.baseline, out / f"{task}.png"))
    report["plots"] = {task: f"{task}.png" for task in tasks} if config.plots else {}
    report["wall_seconds"] = round(time.monotonic() - started, 3)
    write_json(out / "compare.json", report)
    from tpt.compare.report import markdown

    write_atomic(out / "compare.md", markdown(report))
    verdicts = {t: {k: c["verdict"] for k, c in e["contrasts"].items()} for t, e in report["tasks"].items()}
    return CompareSummary(
        output=out, baseline=config.baseline, arms=tuple(by_arm), tasks=tuple(tasks), verdicts=verdicts,
        files=tuple(files), report=report, wall_seconds=report["wall_seconds"],
    )  # fmt: skip


def _say(log: Any, message: str) -> None:
    if log is not None:
        print(message, file=log, flush=True)
