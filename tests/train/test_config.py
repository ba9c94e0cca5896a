"""Token counts, checkpoint plans and the config checks that stop bad runs before any work."""

from __future__ import annotations

import pytest

from tpt.core.errors import ConfigError
from tpt.train.config import LoopConfig, OptimConfig, parse_token_list, parse_tokens


def make(**kw) -> LoopConfig:
    base = dict(optim=OptimConfig(lr=1e-3), tokens=10_240, batch_tokens=2048, seq_len=128)
    return LoopConfig(**{**base, **kw})


def test_parse_tokens_accepts_suffixes_and_exponents() -> None:
    assert parse_tokens("3M", option="--tokens") == 3_000_000
    assert parse_tokens("1.5m", option="--tokens") == 1_500_000
    assert parse_tokens("200k", option="--tokens") == 200_000
    assert parse_tokens("3e6", option="--tokens") == 3_000_000
    assert parse_tokens("4096", option="--tokens") == 4096
    assert parse_token_list("200k,100000,200000", option="--save-at") == (100_000, 200_000)
    for bad in ("", "abc", "1.5", "-3", "0"):
        with pytest.raises(ConfigError, match="--tokens"):
            parse_tokens(bad, option="--tokens")


def test_steps_reach_the_budget_and_save_points_round_up_to_steps() -> None:
    cfg = make(tokens=3_000_000, save_at_tokens=(100_000, 1_000_000), save_every_tokens=None)
    assert cfg.rows_per_step == 16
    assert cfg.total_steps == 1465  # 1465 * 2048 = 3,000,320 >= 3,000,000
    # 100,000 tokens -> step 49 (100,352 tokens); 1,000,000 -> step 489; the last step always.
    assert cfg.save_steps() == [49, 489, 1465]
    every = make(tokens=10_240, save_every_tokens=4096)
    assert every.save_steps() == [2, 4, 5]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(tokens=1000), "smaller than one batch"),
        (dict(batch_tokens=2000), "multiple of the data's seq_len 128"),
        (dict(micro_batch_rows=0), "--micro-batch"),
        (dict(save_at_tokens=(0,)), "--save-at"),
        (dict(log_every_steps=0), "--log-every"),
    ],
)
def test_bad_train_config_is_refused_with_the_option_named(kw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make(**kw)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (dict(lr=0), "--lr"),
        (dict(schedule="linear"), "--schedule"),
        (dict(betas=(0.9, 1.0)), "--betas"),
        (dict(warmup_steps=-1), "--warmup-steps"),
        (dict(min_lr_ratio=2), "--min-lr-ratio"),
    ],
)
def test_bad_optimizer_config_is_refused(kw: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        OptimConfig(**{"lr": 1e-3, **kw})


def test_binary_token_suffixes():
    from tpt.train.config import parse_tokens

    assert parse_tokens("4Mi", option="--batch-tokens") == 4 * 2**20
    assert parse_tokens("8Ki", option="--batch-tokens") == 8192
    assert parse_tokens("4M", option="--batch-tokens") == 4_000_000
