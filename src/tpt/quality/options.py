"""The command-line options of the record checks, shared by `tpt validate` and `tpt pack` (argparse only:
no numpy at import; the checks themselves are quality.checks)."""

from __future__ import annotations

import argparse

# checks.CHECKS without missing_thinking (it cannot be disabled); written here so that the CLI does not
# import numpy, and held equal to it by tests/validate/test_cli_config.py.
CHECK_NAMES = (
    "truncated",
    "loop_stopped",
    "unclosed_think",
    "empty",
    "too_short",
    "leaked_control",
    "repetition",
    "copy",
    "contamination",
)
EVAL_SETS = "gsm8k,math500,mmlu,arc_challenge"


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    """The thresholds of the checks; shared by `tpt validate` and `tpt pack`."""
    g = parser.add_argument_group("trajectory checks")
    g.add_argument(
        "--min-thinking-words",
        type=int,
        default=20,
        help="shorter thinking is too_short (default 20)",
    )
    g.add_argument("--repetition-ngram", type=int, default=10, help="n of the repetition check (default 10)")
    g.add_argument(
        "--max-repetition",
        type=float,
        default=0.3,
        help="largest fraction of repeated n-grams in the thinking (default 0.3)",
    )
    g.add_argument("--copy-ngram", type=int, default=8, help="n of the copy check (default 8)")
    g.add_argument(
        "--max-copy",
        type=float,
        default=0.5,
        help="largest fraction of thinking n-grams found in the document (default 0.5)",
    )
    g.add_argument(
        "--contamination-ngram",
        type=int,
        default=13,
        help="n of the evaluation-set overlap check (default 13)",
    )
    g.add_argument(
        "--contamination-sets",
        default=EVAL_SETS,
        help=f"bundled evaluation sets to check against (default {EVAL_SETS})",
    )
    g.add_argument(
        "--contamination-min-hits",
        type=int,
        default=1,
        help="shared n-grams that make a record contaminated (default 1)",
    )
    g.add_argument(
        "--control-token",
        action="append",
        default=[],
        metavar="STRING",
        help="another literal string that counts as a leaked control token (repeatable)",
    )
    g.add_argument(
        "--disable-check",
        action="append",
        default=[],
        choices=CHECK_NAMES,
        metavar="CHECK",
        help=f"skip a check (repeatable): {', '.join(CHECK_NAMES)}",
    )
    g.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="NAME",
        help="also run a plugin's check (entry point group tpt.checks, docs/plugins.md; repeatable)",
    )


def check_config_from_args(args: argparse.Namespace):  # -> CheckConfig (imported lazily)
    from tpt.quality.checks import CheckConfig

    return CheckConfig(
        min_thinking_words=args.min_thinking_words,
        repetition_ngram=args.repetition_ngram,
        max_repetition=args.max_repetition,
        copy_ngram=args.copy_ngram,
        max_copy=args.max_copy,
        contamination_ngram=args.contamination_ngram,
        contamination_sets=tuple(s.strip() for s in args.contamination_sets.split(",") if s.strip()),
        contamination_min_hits=args.contamination_min_hits,
        control_strings=tuple(args.control_token),
        disabled=frozenset(args.disable_check),
        plugins=tuple(dict.fromkeys(args.check)),
    )


def add_duplicate_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duplicate-ids",
        choices=["keep-both", "keep-first"],
        default="keep-both",
        help="records whose id came before: keep-both (default; counted and listed in the summary) "
        "or keep-first (the later ones are rejected as duplicate_id)",
    )
