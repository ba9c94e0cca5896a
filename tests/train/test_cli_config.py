"""`tpt train` and `tpt sft` options against TrainConfig and SftConfig; the presets' one home."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from tpt.core.configs import drift
from tpt.core.errors import ConfigError
from tpt.sft import cli as sft_cli
from tpt.sft.config import SftConfig
from tpt.train import cli
from tpt.train import config as train_config  # its testbed() is not a test
from tpt.train.config import PRESETS, TrainConfig, midtrain, pretrain, sft
from tpt.train.options import PRESET_OPTIONS

DOCS = Path(__file__).parents[2] / "docs" / "train.md"


def parser_of(module) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser


def test_the_train_options_default_to_train_config():
    auto = {"preset": lambda name: None if name == "auto" else PRESETS[name]()}
    assert drift(parser_of(cli), TrainConfig, convert=auto, cli_only=set(PRESET_OPTIONS)) == []


def test_the_sft_options_default_to_sft_config():
    named = {"preset": lambda name: PRESETS[name]()}
    assert drift(parser_of(sft_cli), SftConfig, convert=named, cli_only=set(PRESET_OPTIONS)) == []


def test_the_model_size_choices_are_the_model_shapes():
    model = pytest.importorskip("tpt.train.model")
    assert cli.MODEL_SIZES == tuple(model.SIZES)


def test_the_cli_builds_the_config_a_python_caller_would():
    args = parser_of(cli).parse_args(["pack", "-o", "run", "--tokens", "16k"])
    config = cli.config_from_args(args)
    assert config == TrainConfig(data_dir="pack", output="run", tokens=16_000, preset=pretrain())
    assert TrainConfig(data_dir="pack", output="run", tokens=16_000).chosen_preset == config.preset
    args = parser_of(cli).parse_args(
        ["pack", "-o", "run", "--tokens", "1M", "--init", "ckpt", "--lr", "6e-5"]
    )
    config = cli.config_from_args(args)
    assert config.preset == midtrain().override(lr=6e-5) and config.preset.name == "midtrain"
    args = parser_of(sft_cli).parse_args(["chat.jsonl", "--init", "ckpt", "-o", "run", "--preset", "testbed"])
    config = sft_cli.config_from_args(args)
    assert config == SftConfig(data=("chat.jsonl",), init="ckpt", output="run", preset=train_config.testbed())
    assert SftConfig(data=["chat.jsonl"], init="ckpt", output="run").preset == sft()


def test_stage_configs_are_checked_when_made():
    with pytest.raises(ConfigError, match="--qk-norm"):
        TrainConfig(data_dir="d", output="o", tokens=10, init="ckpt", qk_norm=True)
    with pytest.raises(ConfigError, match="--threads"):
        TrainConfig(data_dir="d", output="o", tokens=10, threads=0)
    with pytest.raises(ConfigError, match="--epochs and --tokens"):
        SftConfig(data=["x"], init="i", output="o", epochs=1, tokens=100)
    with pytest.raises(ConfigError, match="--seq-len"):
        SftConfig(data=["x"], init="i", output="o", seq_len=8)


def test_the_docs_table_of_presets_is_the_presets():
    """docs/train.md writes the presets out; they are defined once, in train/config.py."""
    rows = re.findall(r"^\| `(\w+)`[^|]*\|(.*)\|$", DOCS.read_text(encoding="utf-8"), flags=re.M)
    table = {name: [c.strip() for c in cells.split("|")] for name, cells in rows if name in PRESETS}
    assert set(table) == set(PRESETS)
    for name, (lr, schedule, warmup, betas, wd, clip, batch) in table.items():
        p = PRESETS[name]()
        got = (float(lr), schedule, int(warmup), tuple(float(b) for b in betas.split("/")))
        assert got == (p.optim.lr, p.optim.schedule, p.optim.warmup_steps, p.optim.betas), name
        assert (float(wd), float(clip), int(batch.replace(",", ""))) == (
            p.optim.weight_decay,
            p.optim.grad_clip,
            p.batch_tokens,
        ), name
