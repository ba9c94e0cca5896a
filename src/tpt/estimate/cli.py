"""`tpt estimate INPUT --sample N`: augment a random sample through the real stage and project the cost.

It takes every `tpt augment` option (backend, model, prompt, decoding, --executor ray, --serve), so the
sample runs exactly as the whole corpus would, then scales what it measured to the whole corpus.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "Estimate documents, tokens and GPU-hours of augmenting a corpus from a random sample of it."


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tpt.augment import cli as augment_cli

    augment_cli.add_arguments(p)
    for action in p._actions:  # the sample's output is a temp dir unless asked for
        if action.dest == "output":
            action.required = False
            action.help = (
                "keep the sample (sample.jsonl), its augmented output (augmented/) and estimate.json "
                "in this new directory; default: a temp dir"
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
    import tempfile

    from tpt.augment import cli as augment_cli
    from tpt.errors import ConfigError
    from tpt.estimate.projection import SampleMeasurement, project, report
    from tpt.estimate.sample import draw_sample

    if args.limit is not None:
        raise ConfigError("tpt estimate draws its own sample: use --sample N, not --limit")
    with tempfile.TemporaryDirectory(prefix="tpt-estimate-") as tmp:
        root = Path(args.output) if args.output else Path(tmp)
        out, sample_file = root / "augmented", root / "sample.jsonl"
        if out.exists():  # a resumed sample would measure no throughput
            raise ConfigError(f"{root} already holds a sample run; give tpt estimate a new --output")
        corpus_items, sample_items = draw_sample(
            args.inputs, args.sample, seed=args.sample_seed, out=sample_file
        )
        if sample_items == 0:
            raise ConfigError(f"{' '.join(args.inputs)} holds no items to sample")
        sample_args = argparse.Namespace(**{**vars(args), "inputs": [str(sample_file)], "output": out})
        augment_cli.run(sample_args)  # the real stage; it prints its own summary
        s = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    measured = SampleMeasurement(
        items=s["input_items"],
        records=s["records"],
        doc_tokens=s["doc_tokens"],
        prompt_tokens=s["prompt_tokens"],
        completion_tokens=s["completion_tokens"],
        wall_seconds=s["wall_time_s_this_run"],
    )
    projection = project(
        measured,
        corpus_items,
        gpu_tokens_per_s=args.gpu_throughput,
        gpus=args.gpus,
        target_training_tokens=args.target_training_tokens,
    )
    backend = args.backend or ("openai" if args.serve else "transformers")
    print(f"estimate from a random sample of {sample_items} of {corpus_items:,} items (backend {backend}):")
    print(report(projection))
    if args.output:
        from dataclasses import asdict

        from tpt.artifacts import write_json

        write_json(
            Path(args.output) / "estimate.json",
            {"sample": {**asdict(measured), "seed": args.sample_seed}, "projection": projection.as_dict()},
        )
    return 0
