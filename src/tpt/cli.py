"""The `tpt` command: one subcommand per stage, each defined in its own `<stage>/cli.py` module.

A command module exposes `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`, and
imports nothing heavy at module level. Only the module of the command being run is imported, so one
stage's problem cannot break another's command and `tpt --help` stays instant. This is the only place
that exits.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help); order is the order of the pipeline, and of `tpt --help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "augment": ("tpt.augment.cli", "a teacher LLM writes one thinking trajectory per document"),
    "validate": ("tpt.validate.cli", "flag bad trajectories (truncated, degenerate, copied, contaminated)"),
    "tokenizer": ("tpt.tokenizer.cli", "train a byte-level BPE tokenizer for students trained from scratch"),
    "pack": ("tpt.pack.cli", "tokenize [document; <think> thinking </think>] samples into packed shards"),
    "inspect": ("tpt.inspect.cli", "an HTML report of augment, validate and pack directories, with samples"),
    "train": ("tpt.train.cli", "pre-train or mid-train a student on packed data"),
    "sft": ("tpt.sft.cli", "supervised fine-tuning on chat data (loss on assistant tokens only)"),
    "eval": ("tpt.evaluate.cli", "score models or every checkpoint of a run on reasoning benchmarks"),
    "compare": ("tpt.compare.cli", "data-efficiency factor of evaluated arms vs a baseline, with intervals"),
    "reproduce": ("tpt.reproduce.cli", "the TPT experiment end to end on a CPU, with a report"),
    "estimate": ("tpt.estimate.cli", "project the cost of augmenting a whole corpus from a sample"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; the full options only of `command` (others are listed by name and help)."""
    from tpt import __version__

    parser = argparse.ArgumentParser(
        prog="tpt",
        description="Thinking-augmented Pre-Training: augment a corpus with teacher thinking, "
        "pack it, train a student, evaluate it.",
    )
    parser.add_argument("--version", action="version", version=f"tpt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            module = importlib.import_module(module_name)
            p.description = module.HELP
            module.add_arguments(p)
            p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from tpt.core.errors import TptError

    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    try:
        return int(args._run(args) or 0)
    except TptError as exc:
        print(f"tpt {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the machine's: disk full, permissions, a missing directory
        from tpt.core.machine_errors import describe

        print(f"tpt {args.command}: error: {describe(exc, getattr(args, 'output', None))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tpt {args.command}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
