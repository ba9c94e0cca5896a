"""Every option of `tpt augment` fills a config field and defaults to that field's default (written once)."""

from __future__ import annotations

import argparse

import pytest

from tpt.augment import cli
from tpt.augment.backends.base import BackendOptions, SamplingParams
from tpt.augment.budget import BudgetOptions
from tpt.augment.config import AugmentConfig
from tpt.augment.executors.ray.options import RayOptions
from tpt.augment.loopguard import LoopGuardOptions
from tpt.augment.servers.engines import ServeSpec
from tpt.core.configs import drift

# config class -> {option dest: the field it fills}; every option is in exactly one, or CLI-only.
FIELDS: dict[type, dict[str, str]] = {
    AugmentConfig: {
        d: d
        for d in (
            "inputs output backend text_field id_field limit strict duplicate_ids control_tokens template "
            "max_doc_tokens shard_size overwrite_config retry_failed output_format loop_policy fail_fast "
            "thinking_budget"
        ).split()
    },
    SamplingParams: {"temperature": "temperature", "top_p": "top_p", "max_thinking_tokens": "max_tokens"}
    | {d: d for d in ("repetition_penalty", "frequency_penalty", "presence_penalty")},
    LoopGuardOptions: {"loop_guard": "enabled", "loop_ngram": "ngram", "loop_window": "window"}
    | {"loop_threshold": "threshold"},
    BackendOptions: {
        **{
            d: d
            for d in (
                "model base_url api_key_env concurrency max_retries tokenizer batch_size dtype device "
                "open_think sampling_fields seed"
            ).split()
        },
        "request_timeout": "request_timeout_s",
        "engine_arg": "engine_args",
    },
    BudgetOptions: {"allocation": "allocation"},
    RayOptions: {d: d for d in "address workers worker_cpus worker_gpus units_per_worker".split()}
    | {"worker_restarts": "max_restarts", "ray_reads": "reads"},
    ServeSpec: {
        "serve": "engine",
        "serve_arg": "extra_args",
        "serve_command": "command",
        "serve_python": "python",
        "served_model_name": "served_model_name",
        "serve_startup_timeout": "startup_timeout_s",
        "serve_max_restarts": "max_restarts",
    },
}
CLI_ONLY = {"no_progress", "executor", "check_server"}
"""--no-progress is `progress=False`; --executor picks an executor from the registry (executors/__init__.py);
--check-server runs the server check instead of a run (server_check.py)."""
CONVERT = {"engine_arg": cli._engine_args, "serve_arg": tuple, "loop_guard": lambda v: v == "on"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    return p


@pytest.mark.parametrize("cls", list(FIELDS), ids=lambda c: c.__name__)
def test_every_option_defaults_to_its_config_field(cls):
    others = {d for c, fields in FIELDS.items() if c is not cls for d in fields} | CLI_ONLY
    assert drift(parser(), cls, dests=FIELDS[cls], convert=CONVERT, cli_only=others - set(FIELDS[cls])) == []


def test_the_check_catches_a_default_written_twice():
    """A default changed in the config alone is found (the test above can fail)."""
    p = parser()
    [concurrency] = [a for a in p._actions if a.dest == "concurrency"]
    concurrency.default = 32
    others = {d for c, fields in FIELDS.items() if c is not BackendOptions for d in fields} | CLI_ONLY
    found = drift(p, BackendOptions, dests=FIELDS[BackendOptions], convert=CONVERT, cli_only=others)
    assert "--concurrency defaults to 32 but BackendOptions.concurrency to 64" in found


def test_a_backend_given_no_options_takes_the_same_defaults():
    """The openai backend built from an empty options dict has the CLI's defaults."""
    pytest.importorskip("aiohttp")
    from tpt.augment.backends.openai_http import build

    backend = build({"model": "m", "base_url": "http://127.0.0.1:9/v1"})
    args = parser().parse_args(["x", "--output", "o"])
    assert (backend.concurrency, backend.request_timeout_s, backend.max_retries) == (
        args.concurrency,
        args.request_timeout,
        args.max_retries,
    )
