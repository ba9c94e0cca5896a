"""Learning-rate schedules give the expected values step by step, and weight decay skips norms."""

from __future__ import annotations

import math

import pytest

from tpt.train.config import OptimConfig
from tpt.train.optim import build_optimizer, lr_at


def lrs(total: int, **kw) -> list[float]:
    cfg = OptimConfig(**{"lr": 1.0, **kw})
    return [lr_at(s, cfg, total) for s in range(total)]


def test_warmup_then_constant() -> None:
    assert lrs(6, schedule="constant", warmup_steps=4) == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert lrs(3, schedule="constant", warmup_steps=0) == [1.0, 1.0, 1.0]


def test_cosine_goes_from_peak_to_floor_at_the_last_step() -> None:
    got = lrs(7, schedule="cosine", warmup_steps=2, min_lr_ratio=0.1)
    # warmup 0.5, 1.0; then 5 steps from progress 0 to 1 over span 4: cos at 0, 1/4, 1/2, 3/4, 1.
    want = [0.5, 1.0] + [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(5)]
    assert got == pytest.approx(want)
    assert got[-1] == pytest.approx(0.1)


def test_wsd_holds_then_decays_linearly_over_the_last_fraction() -> None:
    got = lrs(10, schedule="wsd", warmup_steps=2, decay_fraction=0.4, min_lr_ratio=0.0)
    # decay covers the last 4 steps (6..9): 1 - k/4 for k = 1..4
    assert got == pytest.approx([0.5, 1.0, 1.0, 1.0, 1.0, 1.0, 0.75, 0.5, 0.25, 0.0])


def test_weight_decay_only_on_matrices() -> None:
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4))
    opt = build_optimizer(model, OptimConfig(lr=1e-3, weight_decay=0.1, betas=(0.9, 0.98)))
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.1 and [p.shape for p in decay["params"]] == [torch.Size([4, 4])]
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 3  # bias, norm weight, norm bias
    assert decay["betas"] == (0.9, 0.98)
