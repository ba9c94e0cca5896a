"""`tpt reproduce --output DIR`: the knowledge and arithmetic worlds, each with raw, tpt, tpt-shuffled and
tpt-filler arms over several seeds, run through the same `tpt` commands a user runs by hand, and the
pre-registered contrasts. Flags become a ReproduceConfig; tpt.reproduce.stage.run does the rest."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

HELP = "the TPT experiment on a CPU: a positive and a negative control for document-specific thinking, with a report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tpt.reproduce.presets import CONFIRMATORY_SEEDS, DEVELOPMENT_SEEDS

    p.add_argument("--output", "-o", required=True, type=Path, help="run directory (re-run to resume)")
    p.add_argument(
        "--scale",
        default="default",
        help="quick (plumbing only), default (`make demo`: 2 worlds x 4 arms x 5 seeds), full (longer)",
    )
    p.add_argument("--seeds", default=None, help="override the scale's run seeds, e.g. 0,1,2,3,4")
    p.add_argument(
        "--world-seed",
        type=int,
        default=DEVELOPMENT_SEEDS["world_seed"][0],
        help=f"seed of both worlds (default {DEVELOPMENT_SEEDS['world_seed'][0]}, the development seed; "
        f"`make demo` uses {CONFIRMATORY_SEEDS['world_seed']})",
    )
    p.add_argument(
        "--test-seed",
        type=int,
        default=DEVELOPMENT_SEEDS["test_seed"][0],
        help=f"seed of the test draws (default {DEVELOPMENT_SEEDS['test_seed'][0]}, the development seed; "
        f"`make demo` uses {CONFIRMATORY_SEEDS['test_seed']})",
    )
    p.add_argument(
        "--worlds",
        default=None,
        help="comma-separated worlds, the primary first (default knowledge,arithmetic)",
    )
    p.add_argument("--parallel", type=int, default=None, help="jobs at once, one thread each (default 2)")
    p.add_argument(
        "--llm-teacher",
        action="store_true",
        help="add arm tpt-llm to the arithmetic world: the embedded SmolLM2-135M's thinking (not in make demo)",
    )
    p.add_argument("--llm-max-thinking-tokens", type=int, default=160, help="its thinking cap per document")
    p.add_argument(
        "--budget-arms",
        action="store_true",
        help="add arms tpt-uniform and tpt-difficulty to every world: the oracle's thinking under one global "
        "thinking budget (tpt augment --thinking-budget), contrast tpt-difficulty vs tpt-uniform (not in make demo)",
    )
    p.add_argument("--budget-fraction", type=float, default=0.5,
                   help="that budget as a fraction of the unbudgeted oracle's thinking tokens (default 0.5)")  # fmt: skip
    p.add_argument(
        "--part2",
        action="store_true",
        help="also run the embedded SmolLM2 teacher on the bundled sample corpus (trajectories only)",
    )
    p.add_argument("--overwrite-config", action="store_true",
                   help="continue in a directory made with other settings (finished commands are still reused)")  # fmt: skip


def _ints(text: str, flag: str) -> tuple[int, ...]:
    from tpt.core.errors import ConfigError

    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: expected comma-separated integers, e.g. 0,1") from None


def to_config(args: argparse.Namespace):  # noqa: ANN201 (ReproduceConfig, imported lazily)
    from tpt.reproduce.config import ReproduceConfig

    argv = (
        sys.argv[2:]
        if sys.argv[1:2] == ["reproduce"]
        else [f"--output={args.output}", f"--scale={args.scale}"]
    )
    extra = {"worlds": tuple(w.strip() for w in args.worlds.split(","))} if args.worlds else {}
    return ReproduceConfig(output=args.output, scale=args.scale,
                           seeds=_ints(args.seeds, "--seeds") if args.seeds else None, world_seed=args.world_seed,
                           test_seed=args.test_seed, parallel=args.parallel, part2=args.part2,
                           llm_teacher=args.llm_teacher, llm_max_thinking_tokens=args.llm_max_thinking_tokens,
                           budget_arms=args.budget_arms, budget_fraction=args.budget_fraction,
                           overwrite_config=args.overwrite_config, command="tpt reproduce " + shlex.join(argv),
                           **extra)  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from tpt.reproduce.stage import run as run_stage

    run_stage(to_config(args))
    return 0
