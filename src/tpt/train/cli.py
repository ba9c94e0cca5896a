"""`tpt train`: pre-train a student from scratch, or mid-train a local checkpoint, on packed TPT data."""

from __future__ import annotations

import argparse

from tpt.train.config import parse_tokens
from tpt.train.options import add_optimization_arguments

# train/model.py's SIZES (kept apart: model.py imports torch); tests/train/test_cli_config.py holds them equal.
MODEL_SIZES = ("tiny", "small", "medium", "1b", "3b", "8b")
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
        choices=MODEL_SIZES,
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


def config_from_args(args: argparse.Namespace):  # -> TrainConfig
    from tpt.core.configs import from_args
    from tpt.train.config import TrainConfig
    from tpt.train.options import PRESET_OPTIONS, preset_from_args

    name = ("midtrain" if args.init else "pretrain") if args.preset == "auto" else args.preset
    fields = {k: v for k, v in vars(args).items() if k not in PRESET_OPTIONS and k != "preset"}
    return from_args(TrainConfig, argparse.Namespace(**fields), preset=preset_from_args(args, name))


def run(args: argparse.Namespace) -> int:
    from tpt.train.stage import run as train

    train(config_from_args(args))
    return 0
