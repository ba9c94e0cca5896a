"""`tpt compare --arm NAME=EVAL[,EVAL] ... --baseline NAME --output DIR`: the factor, intervals, plots, verdicts.

The work is compare/stage.py's run(CompareConfig); this module only parses.
"""

from __future__ import annotations

import argparse
import sys

HELP = (
    "compare arms of evaluated training runs against a baseline: data-efficiency factor and accuracy with "
    "intervals over seeds and test items, plots and a verdict per contrast"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--arm",
        action="append",
        metavar="NAME=EVAL[,EVAL]",
        help="an arm and its runs, one per seed: `tpt eval` results files (every model in one is a run) or "
        "`tpt train` run directories scored by `tpt eval`; repeat for every arm",
    )
    p.add_argument(
        "--baseline", required=True, metavar="NAME", help="the arm the others are compared against"
    )
    p.add_argument(
        "--output", required=True, metavar="DIR", help="writes compare.json, compare.md and TASK.png here"
    )
    p.add_argument(
        "--results",
        action="append",
        default=[],
        metavar="FILE",
        help="a results file to look up run directories' rows in (besides RUN/*.jsonl and RUN/../*.jsonl)",
    )
    p.add_argument(
        "--tasks", default="", help="comma-separated tasks to compare (default: every task all runs have)"
    )
    p.add_argument("--metric", default=None, help="the per-item metric (default: each task's primary metric)")
    p.add_argument("--confidence", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--bootstrap", type=int, default=2000, help="item-bootstrap replicates (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the item bootstrap (default 0)")
    p.add_argument(
        "--ignore-setting",
        action="append",
        default=[],
        metavar="FIELD",
        help="an eval setting allowed to differ between runs (e.g. batch_size, task.data); repeatable",
    )
    p.add_argument(
        "--levels",
        metavar="FILE",
        help="JSONL of the test items' strata (`id` and --level-field per record, e.g. a difficulty level): "
        "stratifies the item bootstrap",
    )
    p.add_argument("--level-field", default="level", help="the stratum field of --levels (default: level)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots (which need matplotlib)")


def config_from_args(args: argparse.Namespace):
    from tpt.compare.config import CompareConfig, parse_arm

    return CompareConfig(
        arms=tuple(parse_arm(a) for a in args.arm or ()),
        baseline=args.baseline,
        output=args.output,
        results=tuple(args.results),
        tasks=tuple(t.strip() for t in args.tasks.split(",") if t.strip()),
        metric=args.metric,
        confidence=args.confidence,
        bootstrap=args.bootstrap,
        seed=args.seed,
        ignore_settings=tuple(args.ignore_setting),
        levels=args.levels,
        level_field=args.level_field,
        plots=not args.no_plots,
    )


def run(args: argparse.Namespace) -> int:
    from tpt.compare.stage import run as compare

    summary = compare(config_from_args(args))
    print(f"tpt compare: wrote {', '.join(str(f) for f in summary.files)}", file=sys.stderr)
    return 0
