"""`tpt eval`'s options against EvalConfig: no default written twice may drift."""

from __future__ import annotations

import argparse

import pytest

from tpt.core.configs import drift
from tpt.core.errors import ConfigError
from tpt.evaluate import cli
from tpt.evaluate.stage import EvalConfig


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return p


def test_the_eval_options_default_to_eval_config():
    # --tasks (comma-separated) and --task-file (repeatable) make EvalConfig.tasks together;
    # --export-lm-eval and --list-tasks are other actions of the command.
    cli_only = {"tasks", "task_file", "export_lm_eval", "list_tasks"}
    assert drift(parser(), EvalConfig, convert={"models": tuple}, cli_only=cli_only) == []


def test_eval_config_is_checked_when_made():
    assert EvalConfig(models=["m"], tasks=["gsm8k"]).device == "cpu"
    assert EvalConfig(models=["m"], tasks=["gsm8k"], engine="vllm").device == "cuda"
    with pytest.raises(ConfigError, match="no MODEL"):
        EvalConfig(models=[], tasks=["gsm8k"])
    with pytest.raises(ConfigError, match="engine"):
        EvalConfig(models=["m"], tasks=["gsm8k"], engine="tgi")
    with pytest.raises(ConfigError, match="limit"):
        EvalConfig(models=["m"], tasks=["gsm8k"], limit=0)
