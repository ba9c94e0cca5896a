"""`tpt validate`'s options against ValidateConfig and CheckConfig: no default written twice may drift."""

from __future__ import annotations

import argparse

from tpt.core.configs import drift
from tpt.quality import options
from tpt.quality.checks import CHECKS, CheckConfig
from tpt.validate import cli
from tpt.validate.config import RaySettings
from tpt.validate.stage import ValidateConfig

CHECK_OPTIONS = dict(
    dests={
        "control_token": "control_strings",
        "disable_check": "disabled",
        "check": "plugins",
    },
    convert={
        "contamination_sets": lambda s: tuple(x.strip() for x in s.split(",") if x.strip()),
        "control_token": tuple,
        "disable_check": frozenset,
        "check": tuple,
    },
)


def check_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    cli.add_check_arguments(parser)
    return parser


def test_the_disable_check_choices_are_the_checks_that_can_be_disabled():
    assert options.CHECK_NAMES == CHECKS[1:] and CHECKS[0] == "missing_thinking"


def test_the_check_options_default_to_check_config():
    assert drift(check_parser(), CheckConfig, **CHECK_OPTIONS) == []


def test_the_validate_options_default_to_validate_config():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    check_dests = {a.dest for a in check_parser()._actions}
    ray_dests = {"address", "workers", "worker_cpus"}
    assert drift(parser, ValidateConfig, cli_only=check_dests | ray_dests) == []


def test_the_ray_options_default_to_ray_settings():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["in.jsonl", "--output", "out"])
    assert (
        RaySettings(address=args.address, workers=args.workers, worker_cpus=args.worker_cpus) == RaySettings()
    )
    assert args.executor == ValidateConfig(inputs=("x",), output="o").executor


def test_the_cli_builds_the_config_the_defaults_give():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["in.jsonl", "--output", "out"])
    assert cli.check_config_from_args(args) == CheckConfig()
