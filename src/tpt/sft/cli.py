"""`tpt sft`: fine-tune a checkpoint on chat data, loss on assistant tokens only, examples packed apart."""

from __future__ import annotations

import argparse

from tpt.sft.config import SFT_EPOCHS
from tpt.train.config import parse_tokens
from tpt.train.options import add_optimization_arguments

HELP = "fine-tune a checkpoint on chat data: assistant-only loss, no attention across packed examples"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "data",
        nargs="+",
        metavar="JSONL",
        help="chat data: lines with a `messages` list, or GSM8K-style `question`/`answer`",
    )
    parser.add_argument(
        "--init",
        required=True,
        metavar="PATH",
        help="the local Hugging Face checkpoint to fine-tune",
    )
    parser.add_argument(
        "--output", "-o", required=True, metavar="DIR", help="run directory (re-run to resume)"
    )
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument(
        "--epochs", type=float, help=f"passes over the packed examples (default {SFT_EPOCHS:g}, as the paper)"
    )
    budget.add_argument(
        "--tokens",
        type=lambda s: parse_tokens(s, option="--tokens"),
        help="token budget instead of epochs",
    )
    s = parser.add_argument_group("sequence")
    s.add_argument(
        "--seq-len",
        type=int,
        default=2048,
        help="tokens per packed row (default 2048; the paper: 32k)",
    )
    s.add_argument(
        "--rope-theta-scale",
        type=float,
        default=1.0,
        help="multiply the RoPE base for a longer context (the paper: 16 for 8k -> 32k)",
    )
    s.add_argument(
        "--chat-template",
        default=None,
        metavar="chatml|FILE",
        help="Jinja chat template; default: the tokenizer's own, else ChatML",
    )
    s.add_argument("--max-examples", type=int, help="use only the first N examples")
    add_optimization_arguments(parser, presets=["sft", "testbed"], default_preset="sft")


def config_from_args(args: argparse.Namespace):  # -> SftConfig
    from tpt.core.configs import from_args
    from tpt.sft.config import SftConfig
    from tpt.train.options import PRESET_OPTIONS, preset_from_args

    fields = {k: v for k, v in vars(args).items() if k not in PRESET_OPTIONS and k != "preset"}
    return from_args(SftConfig, argparse.Namespace(**fields), preset=preset_from_args(args, args.preset))


def run(args: argparse.Namespace) -> int:
    from tpt.sft.stage import run as sft

    sft(config_from_args(args))
    return 0
