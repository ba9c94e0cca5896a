"""Command-line options shared by `tpt train` and `tpt sft`, and the preset they choose and override.

Light on purpose (argparse only): the CLI modules import it to build `tpt --help`. The defaults are the
configs' (train/config.py), held equal by tests/train/test_cli_config.py.
"""

from __future__ import annotations

import argparse

from tpt.core.configs import defaults
from tpt.train.config import (
    DATA_ORDERS,
    DEVICES,
    PRECISIONS,
    PRESETS,
    SCHEDULES,
    OptimConfig,
    Preset,
    parse_token_list,
    parse_tokens,
)

PRESET_OPTIONS = {
    "lr": "lr",
    "schedule": "schedule",
    "warmup_steps": "warmup_steps",
    "min_lr_ratio": "min_lr_ratio",
    "decay_fraction": "decay_fraction",
    "betas": "betas",
    "adam_eps": "eps",
    "weight_decay": "weight_decay",
    "grad_clip": "grad_clip",
    "batch_tokens": "batch_tokens",
}
"""Options that override a part of the preset (dest -> Preset.override keyword); unset: the preset's."""
_OPTIM = defaults(OptimConfig)


def add_optimization_arguments(
    parser: argparse.ArgumentParser, *, presets: list[str], default_preset: str
) -> None:
    """Optimizer, batch, precision, checkpoint, logging and launch options (defaults come from --preset);
    each group adds its own flags."""
    _add_optimizer_options(parser, presets=presets, default_preset=default_preset)
    _add_checkpoint_options(parser)
    _add_hardware_options(parser)


def _add_optimizer_options(
    parser: argparse.ArgumentParser, *, presets: list[str], default_preset: str
) -> None:
    """The optimization group: the preset and the parts of it an option overrides, batch, precision."""
    g = parser.add_argument_group("optimization (unset options take the --preset's value)")
    g.add_argument(
        "--preset",
        choices=presets,
        default=default_preset,
        help="option defaults: "
        + "; ".join(f"{n}: {_describe(PRESETS[n]())}" for n in presets if n in PRESETS)
        + f" (default: {default_preset})",
    )
    g.add_argument("--lr", type=float, help="peak learning rate")
    g.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule after warmup")
    g.add_argument("--warmup-steps", type=int, help="linear warmup, in optimizer steps")
    g.add_argument(
        "--min-lr-ratio",
        type=float,
        help=f"final lr of cosine/wsd as a fraction of --lr (default {_OPTIM['min_lr_ratio']})",
    )
    g.add_argument(
        "--decay-fraction",
        type=float,
        help=f"wsd: fraction of steps in the final decay (default {_OPTIM['decay_fraction']})",
    )
    g.add_argument("--betas", type=_betas, help="AdamW betas, e.g. 0.9,0.95")
    g.add_argument("--adam-eps", type=float, help=f"AdamW epsilon (default {_OPTIM['eps']:g})")
    g.add_argument("--weight-decay", type=float, help="AdamW decoupled weight decay (matrices only)")
    g.add_argument("--grad-clip", type=float, help="clip the global gradient norm (0: no clipping)")
    g.add_argument(
        "--batch-tokens",
        type=lambda s: parse_tokens(s, option="--batch-tokens"),
        help="global batch in tokens (all processes; reached by gradient accumulation)",
    )
    g.add_argument(
        "--micro-batch",
        type=int,
        help="rows per forward pass per process (default: largest that fits 8192 tokens)",
    )
    g.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="bf16",
        help="bf16 autocast with fp32 weights (default), or fp32",
    )
    g.add_argument("--seed", type=int, default=0, help="model init and data order (default 0)")
    g.add_argument(
        "--data-order",
        choices=DATA_ORDERS,
        default="shuffle",
        help="shuffle: a new seeded permutation of rows each epoch (default); sequential: stored order",
    )


def _add_checkpoint_options(parser: argparse.ArgumentParser) -> None:
    """The checkpoints and logs group."""
    c = parser.add_argument_group("checkpoints and logs")
    c.add_argument(
        "--save-every",
        type=lambda s: parse_tokens(s, option="--save-every"),
        help="write a checkpoint every N tokens (e.g. 500k); the end of the budget is always saved",
    )
    c.add_argument(
        "--save-at",
        type=lambda s: parse_token_list(s, option="--save-at"),
        default=(),
        help="also write checkpoints at these token counts, e.g. 100k,200k,400k,1M",
    )
    c.add_argument("--log-every", type=int, default=10, help="steps per metrics.jsonl line (default 10)")
    c.add_argument(
        "--tensorboard",
        action="store_true",
        help="also log to RUN_DIR/tensorboard (needs tensorboard)",
    )
    c.add_argument("--wandb", action="store_true", help="also log to Weights & Biases (needs wandb)")
    c.add_argument(
        "--overwrite-config",
        action="store_true",
        help="continue a run directory made with a different config",
    )


def _add_hardware_options(parser: argparse.ArgumentParser) -> None:
    """The hardware group: threads, device, FSDP."""
    r = parser.add_argument_group("hardware")
    r.add_argument(
        "--threads",
        type=int,
        help="CPU threads per process (torch.set_num_threads); default: torch's",
    )
    r.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="default: cuda if available",
    )
    r.add_argument(
        "--fsdp",
        action="store_true",
        help="shard the model with FSDP2 across processes (tested on CPU/gloo; CUDA path untested here)",
    )


def preset_from_args(args: argparse.Namespace, name: str) -> Preset:
    """The preset named `name` with the options given on the command line on top."""
    given = {
        key: getattr(args, dest) for dest, key in PRESET_OPTIONS.items() if getattr(args, dest) is not None
    }
    if "betas" in given:
        given["betas"] = tuple(given["betas"])
    return PRESETS[name]().override(**given)


def _betas(text: str) -> tuple[float, float]:
    try:
        b1, b2 = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers like 0.9,0.95, got {text!r}") from None
    return (b1, b2)


def _describe(p: Preset) -> str:
    o = p.optim
    return (
        f"lr {o.lr:g} {o.schedule}, warmup {o.warmup_steps}, betas {o.betas[0]}/{o.betas[1]}, "
        f"wd {o.weight_decay}, clip {o.grad_clip}, batch {p.batch_tokens:,} tokens"
    )
