"""`tpt tokenizer train CORPUS --vocab-size V --output DIR`: a byte-level BPE for a from-scratch student."""

from __future__ import annotations

import argparse

HELP = "train a byte-level BPE student tokenizer (tpt tokenizer train CORPUS --vocab-size V --output DIR)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="tokenizer_command", metavar="SUBCOMMAND", required=True)
    p = sub.add_parser(
        "train",
        help="train a byte-level BPE tokenizer on JSONL records",
        description="Train a byte-level BPE (Hugging Face tokenizers) on the text (and "
        "thinking) of JSONL records, saved so AutoTokenizer.from_pretrained(DIR) loads it.",
    )
    p.add_argument(
        "corpus",
        nargs="+",
        metavar="CORPUS",
        help="JSONL file(s) or directories (tpt augment output works as is)",
    )
    p.add_argument("--vocab-size", type=int, required=True, help="vocabulary size, added tokens included")
    p.add_argument("--output", required=True, help="directory to write tokenizer.json and its config to")
    p.add_argument(
        "--fields",
        default="text,thinking",
        help="record fields to learn from, comma-separated (default: text,thinking)",
    )
    p.add_argument("--min-frequency", type=int, default=2, help="least count of a merged pair (default 2)")
    p.add_argument(
        "--think-tokens",
        action="store_true",
        help="add <think> and </think> as single tokens (default: they stay plain text)",
    )
    p.add_argument("--max-records", type=int, default=None, help="learn from the first N records only")


def run(args: argparse.Namespace) -> int:
    from tpt.tokenizer.config import TokenizerConfig
    from tpt.tokenizer.stage import run as train_tokenizer

    config = TokenizerConfig(
        corpus=tuple(args.corpus),
        output=args.output,
        vocab_size=args.vocab_size,
        fields=tuple(f.strip() for f in args.fields.split(",") if f.strip()),
        min_frequency=args.min_frequency,
        think_tokens=args.think_tokens,
        max_records=args.max_records,
    )
    summary = train_tokenizer(config)
    print(
        f"tpt tokenizer: {summary.records} records ({summary.characters:,} characters, "
        f"{summary.skipped_lines} unusable lines skipped) -> vocabulary {summary.vocab_size} in {summary.output}"
    )
    return 0
