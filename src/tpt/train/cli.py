"""`tpt train`: pre-train a student from scratch, or mid-train a local checkpoint, on packed TPT data."""

from __future__ import annotations

import argparse
from pathlib import Path

from tpt.train.config import parse_tokens
from tpt.train.options import add_optimization_arguments

HELP = "train a student (from scratch or from a checkpoint) on packed data; checkpoints by tokens seen"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data_dir", metavar="DATA_DIR", help="a PACK_DIR written by `tpt pack`")
    parser.add_argument(
        "--output", "-o", required=True, metavar="DIR", help="run directory (re-run to resume)"
    )
    parser.add_argument(
        "--tokens",
        required=True,
        type=lambda s: parse_tokens(s, option="--tokens"),
        help="token budget, e.g. 3M; cycles over the data in epochs if larger than it",
    )
    m = parser.add_argument_group("model")
    m.add_argument(
        "--model-size",
        default="tiny",
        choices=("tiny", "small", "medium", "1b", "3b", "8b"),
        help="a new student: tiny ~0.85M, small ~5M, medium ~20M non-embedding parameters (CPU); "
        "1b / 3b / 8b: Llama-3.2-1B / Llama-3.2-3B / Llama-3-8B shapes (default tiny)",
    )
    m.add_argument(
        "--qk-norm",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="RMSNorm on queries and keys (Qwen3 block); default on for tiny/small/medium",
    )
    m.add_argument(
        "--init",
        metavar="PATH",
        help="start from this local Hugging Face checkpoint (mid-training)",
    )
    m.add_argument(
        "--block-attention",
        action="store_true",
        help="no attention across samples packed in one row (positions restart per sample)",
    )
    add_optimization_arguments(
        parser, presets=["auto", "pretrain", "midtrain", "testbed"], default_preset="auto"
    )


def run(args: argparse.Namespace) -> int:
    from tpt.train.train_stage import run_train

    if args.preset == "auto":
        args.preset = "midtrain" if args.init else "pretrain"
    return run_train(args, Path(args.data_dir), Path(args.output))
