"""The `--serve` options of `tpt augment` and `tpt estimate`, the ServeSpec they make and its teacher
(named by tpt.augment.executors.SERVED_TEACHER; light: the server code is imported only when used)."""

from __future__ import annotations

import argparse
import shlex
from typing import TYPE_CHECKING

from tpt.augment.servers.engines import ENGINES, ServeSpec

if TYPE_CHECKING:
    from tpt.augment.servers.supervised import ServedTeacher


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The options; their defaults are ServeSpec's (written once, there)."""
    from tpt.core.configs import defaults

    d = defaults(ServeSpec)
    g = p.add_argument_group(
        "managed server (--serve: start the teacher's server, drive it with --backend openai)"
    )
    g.add_argument(
        "--serve",
        default=None,
        metavar="SERVER",
        help=f"{', '.join(ENGINES)} (or a plugin's, docs/plugins.md): start this inference server for "
        "--model (one per Ray worker), wait until it is "
        "healthy, restart it if it dies, stop it at the end",
    )
    g.add_argument(
        "--serve-arg",
        action="append",
        default=[],
        metavar="ARGS",
        help="extra server flags, shell-quoted, repeatable (e.g. '--max-num-seqs 256')",
    )
    g.add_argument(
        "--serve-command",
        default=None,
        help="--serve command: the server command line, with {port} (and {model}) placeholders",
    )
    g.add_argument(
        "--serve-python",
        default=None,
        help="the Python of the environment that has the engine (default: this one)",
    )
    g.add_argument(
        "--served-model-name", default=None, help="the name the server answers to (default: --model)"
    )
    g.add_argument(
        "--serve-startup-timeout",
        type=float,
        default=d["startup_timeout_s"],
        help=f"seconds one server start may take (default {d['startup_timeout_s']:g})",
    )
    g.add_argument(
        "--serve-max-restarts",
        type=int,
        default=d["max_restarts"],
        help=f"restarts of a dead server (default {d['max_restarts']})",
    )


def serve_spec(args: argparse.Namespace) -> ServeSpec | None:
    if args.serve is None:
        return None
    extra = tuple(part for chunk in args.serve_arg for part in shlex.split(chunk))
    return ServeSpec(
        engine=args.serve,
        model=args.model or "",
        served_model_name=args.served_model_name,
        extra_args=extra,
        command=args.serve_command,
        python=args.serve_python,
        startup_timeout_s=args.serve_startup_timeout,
        max_restarts=args.serve_max_restarts,
    )


def teacher_from_args(args: argparse.Namespace) -> ServedTeacher | None:
    """The `--serve` teacher, or None without --serve."""
    spec = serve_spec(args)
    if spec is None:
        return None
    from tpt.augment.servers.supervised import ServedTeacher

    return ServedTeacher(spec)
