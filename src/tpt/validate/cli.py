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


def run(args: argparse.Namespace) -> int:
    from tpt.validate.stage import ValidateConfig
    from tpt.validate.stage import run as validate

    config = ValidateConfig(
        inputs=tuple(args.inputs),
        output=args.output,
        checks=check_config_from_args(args),
        duplicate_ids=args.duplicate_ids,
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
