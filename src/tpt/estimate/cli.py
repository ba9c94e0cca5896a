"""`tpt estimate INPUT --sample N`: augment a random sample through the real stage and project the cost.

It takes every `tpt augment` option (backend, model, prompt, decoding, --executor ray, --serve), so the
sample runs exactly as the whole corpus would, then scales what it measured to the whole corpus. The
work is estimate/stage.py's run(EstimateConfig); this module only parses.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Estimate documents, tokens and GPU-hours of augmenting a corpus from a random sample of it."


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tpt.augment import cli as augment_cli

    augment_cli.add_arguments(
        p,
        optional_output="keep the sample (sample.jsonl), its augmented output (augmented/) and estimate.json "
        "in this new directory; default: a temp dir",
    )
    g = p.add_argument_group("estimate")
    g.add_argument("--sample", type=int, default=64, help="documents to augment (default 64)")
    g.add_argument("--sample-seed", type=int, default=0, help="which random sample (default 0)")
    g.add_argument(
        "--gpu-throughput",
        type=float,
        default=None,
        metavar="TOKENS_PER_S",
        help="generated tokens/s one GPU sustains with your engine and teacher: projects GPU-hours",
    )
    g.add_argument(
        "--gpus", type=int, default=None, help="with --gpu-throughput: wall-clock days on this many GPUs"
    )
    g.add_argument(
        "--target-training-tokens",
        type=float,
        default=None,
        help="e.g. 100e9: how many augmented documents that takes, and whether the corpus has them",
    )


def run(args: argparse.Namespace) -> int:
    from tpt.augment import cli as augment_cli
    from tpt.core.configs import from_args
    from tpt.estimate.config import EstimateConfig
    from tpt.estimate.projection import Projection, report
    from tpt.estimate.stage import run as estimate

    # The output given here is a stand-in: estimate.stage.run puts the sample's run in its own directory.
    teacher, executor = augment_cli.config_from_args(args, output=Path(args.output or ".") / "augmented")
    config = from_args(EstimateConfig, args, augment=teacher)
    summary = estimate(config, executor=executor)
    # What `tpt augment` prints for the sample run (its output is gone with the temp dir unless -o).
    augment_cli.print_summary(
        summary.sample_run, config.output / "augmented" if config.output else "(temp dir)"
    )
    print(
        f"estimate from a random sample of {summary.sample_items} of {summary.corpus_items:,} items "
        f"(backend {teacher.backend}):"
    )
    print(report(Projection(**summary.projection)))
    return 0
