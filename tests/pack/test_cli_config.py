"""`tpt pack`'s options against PackConfig: no default written twice may drift."""

from __future__ import annotations

import argparse

from tpt.core.configs import drift
from tpt.pack import cli
from tpt.pack.stage import PackConfig


def test_the_pack_options_default_to_pack_config():
    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    checks = argparse.ArgumentParser()
    cli.add_check_arguments(checks)  # held to CheckConfig by tests/validate/test_cli_config.py
    assert (
        drift(
            parser,
            PackConfig,
            dests={"mix": "raw_fraction"},
            convert={"weights": dict},
            # --no-progress: the command shows progress, the Python API does not (PackConfig.progress);
            # --paper-faithful turns PackConfig.checks into checks.paper_faithful(checks).
            cli_only={"no_progress", "paper_faithful"} | {a.dest for a in checks._actions},
        )
        == []
    )
