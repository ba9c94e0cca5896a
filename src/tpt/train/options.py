"""Command-line options shared by `tpt train` and `tpt sft`, and their translation into a TrainConfig.

Light on purpose (argparse only): the CLI modules import it to build `tpt --help`.
"""

from __future__ import annotations

import argparse
from typing import Any

from tpt.errors import ConfigError
from tpt.train.config import (
    PRESETS,
    SCHEDULES,
    OptimConfig,
    TrainConfig,
    parse_token_list,
    parse_tokens,
)

OPTIM_KEYS = (
    "lr",
    "schedule",
    "warmup_steps",
    "betas",
    "weight_decay",
    "grad_clip",
    "batch_tokens",
)


def add_optimization_arguments(
    parser: argparse.ArgumentParser, *, presets: list[str], default_preset: str
) -> None:
    """Optimizer, batch, precision, checkpoint, logging and launch options (defaults come from --preset)."""
    g = parser.add_argument_group("optimization (unset options take the --preset's value)")
    g.add_argument(
        "--preset",
        choices=presets,
        default=default_preset,
        help="option defaults: "
        + "; ".join(f"{n}: {_describe(PRESETS[n])}" for n in presets if n in PRESETS)
        + f" (default: {default_preset})",
    )
    g.add_argument("--lr", type=float, help="peak learning rate")
    g.add_argument("--schedule", choices=SCHEDULES, help="learning-rate schedule after warmup")
    g.add_argument("--warmup-steps", type=int, help="linear warmup, in optimizer steps")
    g.add_argument(
        "--min-lr-ratio",
        type=float,
        default=0.1,
        help="final lr of cosine/wsd as a fraction of --lr (default 0.1)",
    )
    g.add_argument(
        "--decay-fraction",
        type=float,
        default=0.2,
        help="wsd: fraction of steps in the final decay (default 0.2)",
    )
    g.add_argument("--betas", type=_betas, help="AdamW betas, e.g. 0.9,0.95")
    g.add_argument("--adam-eps", type=float, default=1e-8, help="AdamW epsilon (default 1e-8)")
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
        choices=("bf16", "fp32"),
        default="bf16",
        help="bf16 autocast with fp32 weights (default), or fp32",
    )
    g.add_argument("--seed", type=int, default=0, help="model init and data order (default 0)")
    g.add_argument(
        "--data-order",
        choices=("shuffle", "sequential"),
        default="shuffle",
        help="shuffle: a new seeded permutation of rows each epoch (default); sequential: stored order",
    )

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

    r = parser.add_argument_group("hardware")
    r.add_argument(
        "--threads",
        type=int,
        help="CPU threads per process (torch.set_num_threads); default: torch's",
    )
    r.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="default: cuda if available",
    )
    r.add_argument(
        "--fsdp",
        action="store_true",
        help="shard the model with FSDP2 across processes (tested on CPU/gloo; CUDA path untested here)",
    )


def build_train_config(args: argparse.Namespace, *, seq_len: int, tokens: int) -> TrainConfig:
    """TrainConfig from parsed options, with unset optimizer options filled from the preset."""
    preset = PRESETS[args.preset]
    value = {k: (getattr(args, k) if getattr(args, k) is not None else preset[k]) for k in OPTIM_KEYS}
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    optim = OptimConfig(
        lr=value["lr"],
        schedule=value["schedule"],
        warmup_steps=value["warmup_steps"],
        min_lr_ratio=args.min_lr_ratio,
        decay_fraction=args.decay_fraction,
        betas=tuple(value["betas"]),
        eps=args.adam_eps,
        weight_decay=value["weight_decay"],
        grad_clip=value["grad_clip"],
    )
    return TrainConfig(
        optim=optim,
        tokens=tokens,
        batch_tokens=value["batch_tokens"],
        seq_len=seq_len,
        micro_batch_rows=args.micro_batch,
        precision=args.precision,
        seed=args.seed,
        save_every_tokens=args.save_every,
        save_at_tokens=tuple(args.save_at),
        log_every_steps=args.log_every,
        data_order=args.data_order,
        extra={"preset": args.preset},
    )


def fingerprint_fields(cfg: TrainConfig) -> dict[str, Any]:
    """The parts of a TrainConfig that change the trained weights (not threads, logging or save points).

    The budget counts only when the schedule depends on it: a constant-lr run can be extended by
    re-running it with a larger --tokens.
    """
    from dataclasses import asdict

    out: dict[str, Any] = {
        "optim": asdict(cfg.optim),
        "batch_tokens": cfg.batch_tokens,
        "seq_len": cfg.seq_len,
        "precision": cfg.precision,
        "seed": cfg.seed,
        "data_order": cfg.data_order,
    }
    if cfg.optim.schedule != "constant":
        out["tokens"] = cfg.tokens
    return out


def _betas(text: str) -> tuple[float, float]:
    try:
        b1, b2 = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers like 0.9,0.95, got {text!r}") from None
    return (b1, b2)


def _describe(p: dict[str, Any]) -> str:
    return (
        f"lr {p['lr']:g} {p['schedule']}, warmup {p['warmup_steps']}, betas {p['betas'][0]}/{p['betas'][1]}, "
        f"wd {p['weight_decay']}, clip {p['grad_clip']}, batch {p['batch_tokens']:,} tokens"
    )
