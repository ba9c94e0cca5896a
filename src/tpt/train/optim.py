"""AdamW with decay only on matrices, and the learning-rate schedules (warmup, then constant/cosine/wsd)."""

from __future__ import annotations

import math
from typing import Any

from tpt.train.config import OptimConfig


def lr_at(step: int, cfg: OptimConfig, total_steps: int) -> float:
    """Learning rate for optimizer step `step` (0-based) of `total_steps`.

    Warmup is linear and reaches the peak on its last step: warmup_steps=4 gives lr x [.25 .5 .75 1].
    cosine goes from the peak at the end of warmup to min_lr_ratio*lr at the last step; wsd holds the
    peak, then decays linearly over the last decay_fraction of all steps to min_lr_ratio*lr.
    """
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    floor = cfg.lr * cfg.min_lr_ratio
    if cfg.schedule == "constant":
        return cfg.lr
    last = max(total_steps - 1, 1)
    if cfg.schedule == "cosine":
        span = max(last - cfg.warmup_steps, 1)
        progress = min((step - cfg.warmup_steps) / span, 1.0)
        return floor + (cfg.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    # wsd: the decay phase covers the last ceil(decay_fraction * total_steps) steps.
    decay_steps = max(math.ceil(cfg.decay_fraction * total_steps), 1)
    decay_start = max(total_steps - decay_steps, cfg.warmup_steps)
    if step < decay_start:
        return cfg.lr
    progress = min((step - decay_start + 1) / max(total_steps - decay_start, 1), 1.0)
    return cfg.lr + (floor - cfg.lr) * progress


def build_optimizer(model: Any, cfg: OptimConfig, *, fused: bool = False) -> Any:
    """AdamW over the model's trainable parameters: weight decay on tensors with >= 2 dims only."""
    import torch

    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    kwargs: dict[str, bool] = {"fused": True} if fused else {}
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, **kwargs)


def set_lr(optimizer: Any, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
