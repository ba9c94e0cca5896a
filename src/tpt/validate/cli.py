"""`tpt validate INPUT... --output DIR`: kept.jsonl, rejected.jsonl (with reasons) and summary.json."""

from __future__ import annotations

import argparse
import sys

from tpt.core.report_hint import inspect_command
from tpt.quality.options import add_check_arguments, add_duplicate_argument, check_config_from_args
from tpt.storage import display

HELP = "check augmented records (truncation, repetition, copying, leaked tokens, contamination)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="tpt augment output directories, or JSONL files/directories with 'text' and 'thinking' fields",
    )
    parser.add_argument("--output", required=True, help="output directory (VAL_DIR)")
    add_duplicate_argument(parser)
    add_check_arguments(parser)
    _add_executor_arguments(parser)


def _add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """--executor and the Ray flags, named as augment's; defaults are ValidateConfig's and RaySettings'."""
    from tpt.validate.executor import EXECUTORS, RaySettings

    d = RaySettings()
    g = parser.add_argument_group("executor (where the units are judged; same output)")
    g.add_argument(
        "--executor",
        choices=EXECUTORS,
        default=EXECUTORS[0],
        help="local (default: this process) or ray (workers judge and commit the input files)",
    )
    g.add_argument(
        "--address",
        default=d.address,
        help="ray: cluster address (auto, host:6379, ray://host:10001); default $RAY_ADDRESS, "
        "else a local cluster on 127.0.0.1",
    )
    g.add_argument(
        "--workers",
        type=int,
        default=d.workers,
        help="ray: units judged at once (default: the cluster's CPUs)",
    )
    g.add_argument(
        "--worker-cpus",
        type=float,
        default=d.worker_cpus,
        help=f"ray: CPUs per unit (default {d.worker_cpus:g})",
    )


def run(args: argparse.Namespace) -> int:
    from tpt.validate.config import RaySettings
    from tpt.validate.stage import ValidateConfig
    from tpt.validate.stage import run as validate

    config = ValidateConfig(
        inputs=tuple(args.inputs),
        output=args.output,
        checks=check_config_from_args(args),
        duplicate_ids=args.duplicate_ids,
        executor=args.executor,
        ray=RaySettings(address=args.address, workers=args.workers, worker_cpus=args.worker_cpus),
    )
    summary = validate(config)
    reasons = ", ".join(f"{k} {v}" for k, v in summary.by_reason.items())
    print(
        f"tpt validate: {summary.records} records: {summary.kept} kept, {summary.rejected} rejected"
        + (f" ({reasons})" if reasons else "")
        + (f"; {summary.duplicate_ids} repeat an earlier id" if summary.duplicate_ids else "")
        + f" -> {args.output}"
    )
    print(inspect_command(display(args.output)), file=sys.stderr)
    return 0
