"""`tpt compare`'s options against CompareConfig, the config's checks, and the report's escaping."""

from __future__ import annotations

import argparse

import pytest

from tpt.compare import cli
from tpt.compare.config import CompareConfig, parse_arm
from tpt.compare.report import escape
from tpt.core.configs import drift
from tpt.core.errors import ConfigError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return p


def test_the_compare_options_default_to_compare_config():
    dests = {"arm": "arms", "ignore_setting": "ignore_settings"}
    convert = {"results": tuple, "ignore_setting": tuple, "tasks": lambda s: tuple(s.split(",") if s else ())}
    assert drift(parser(), CompareConfig, dests=dests, convert=convert, cli_only={"no_plots"}) == []


def test_config_checks():
    ok = (("raw", ("a.jsonl",)), ("tpt", ("b.jsonl",)))
    assert CompareConfig(arms=ok, baseline="raw", output="o").plots
    with pytest.raises(ConfigError, match="not one of the arms"):
        CompareConfig(arms=ok, baseline="x", output="o")
    with pytest.raises(ConfigError, match="arm name"):
        CompareConfig(arms=(("raw", ("a",)), ("t|x", ("b",))), baseline="raw", output="o")
    with pytest.raises(ConfigError, match="no run given"):
        CompareConfig(arms=(("raw", ("a",)), ("tpt", ())), baseline="raw", output="o")
    with pytest.raises(ConfigError, match="--confidence"):
        CompareConfig(arms=ok, baseline="raw", output="o", confidence=1.0)
    with pytest.raises(ConfigError, match="--bootstrap"):
        CompareConfig(arms=ok, baseline="raw", output="o", bootstrap=10)
    assert parse_arm("tpt=a.jsonl, b.jsonl") == ("tpt", ("a.jsonl", "b.jsonl"))
    with pytest.raises(ConfigError, match="NAME=EVAL"):
        parse_arm("a.jsonl")


def test_names_and_paths_are_shown_as_written_in_markdown():
    assert escape("tpt_shuffled") == "tpt\\_shuffled"
    assert escape("runs/[x](javascript:1) <b>|*") == "runs/\\[x\\](javascript:1) &lt;b&gt;\\|\\*"
    assert escape("two\nlines") == "two lines"
