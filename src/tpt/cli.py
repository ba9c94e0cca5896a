"""The `tpt` command: one subcommand per stage, each defined in its own `<stage>/cli.py` module.

A command module exposes `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`, and
imports nothing heavy at module level, so `tpt --help` stays fast. This is the only place that exits.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> module; order is the order of the pipeline, and of `tpt --help`.
COMMANDS: dict[str, str] = {
    "augment": "tpt.augment.cli",
    "validate": "tpt.validate.cli",
    "tokenizer": "tpt.tokenizer.cli",
    "pack": "tpt.pack.cli",
    "train": "tpt.train.cli",
    "sft": "tpt.train.sft_cli",
    "eval": "tpt.evaluate.cli",
    "reproduce": "tpt.reproduce.cli",
    "estimate": "tpt.estimate.cli",
}


def build_parser() -> argparse.ArgumentParser:
    from tpt import __version__

    parser = argparse.ArgumentParser(
        prog="tpt",
        description="Thinking-augmented Pre-Training: augment a corpus with teacher thinking, "
        "pack it, train a student, evaluate it.",
    )
    parser.add_argument("--version", action="version", version=f"tpt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                continue  # a stage not shipped in this build
            raise
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from tpt.errors import TptError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 1
    try:
        return int(args._run(args) or 0)
    except TptError as exc:
        print(f"tpt {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tpt {args.command}: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
