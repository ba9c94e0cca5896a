"""`tpt augment INPUT --output DIR`: the CLI of the augment stage (options only; the work is in stage.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tpt.core.report_hint import inspect_command
from tpt.storage import as_path, display

if TYPE_CHECKING:
    from tpt.formats.summaries import AugmentSummary

HELP = "Have a teacher LLM write one thinking trajectory per document (resumable, exactly once)."
EXIT_STATUSES = """exit status:
  0  done: every input item has an outcome, and no more failures than records
  1  incomplete: stopped before the end; re-run the same command to continue
  2  error: a bad option, unreadable input, or a teacher that cannot start (the message says which)
  3  finished with failures: more failures than records, or no record at all (failures.jsonl says why)
  4  stopped, teacher unusable: the first --fail-fast documents all failed and none succeeded, or the
     server cannot answer as tpt asks; nothing was written for them (re-run once fixed)
  130 interrupted (re-run the same command to resume)
--check-server exits 0 when the server is usable, 4 when it is not."""


def add_arguments(p: argparse.ArgumentParser, *, optional_output: str | None = None) -> None:
    """The options of `tpt augment`; `optional_output`: --output is optional, with this help (estimate).

    Every default comes from a config field (AugmentConfig, SamplingParams, BackendOptions), so it is
    written once; tests/augment/test_cli_defaults.py holds the two together. Each option group below
    adds its own flags, in the order --help lists them."""
    from tpt.augment.config import AugmentConfig
    from tpt.core.configs import defaults

    a = defaults(AugmentConfig)
    augment = optional_output is None  # `tpt augment` itself (not estimate, which shares the options)
    p.add_argument(
        "inputs",
        nargs="*" if augment else "+",  # augment: none with --check-server (run() checks)
        metavar="INPUT",
        help="JSONL (.jsonl, .jsonl.gz, .jsonl.zst) or Parquet files, directories of them, or globs",
    )
    p.add_argument(
        "--output",
        "-o",
        type=as_path,
        help=optional_output or "output directory (resumable): a path or a URL (s3://bucket/aug/); required",
    )
    if augment:
        import argparse as _argparse

        p.formatter_class = _argparse.RawDescriptionHelpFormatter
        p.epilog = EXIT_STATUSES
        p.add_argument(
            "--check-server",
            action="store_true",
            help="openai: send one or two requests to --base-url / --model and print what the server "
            "supports for tpt (streaming, usage, finish_reason, reasoning field, seed, stop, context) "
            "and what tpt does about each gap; no INPUT or --output needed. Exit 0 usable, 4 not",
        )
        p.add_argument(
            "--fail-fast",
            type=int,
            default=a["fail_fast"],
            metavar="N",
            help=f"stop (exit 4) when this run's first N generations all fail and none succeeds "
            f"(default {a['fail_fast']}; 0: never)",
        )
    _add_input_options(p)
    _add_prompt_options(p)
    _add_decoding_options(p)
    _add_loop_guard_options(p)
    _add_backend_options(p)
    _add_output_options(p)
    _add_executor_options(p)


def _add_input_options(p: argparse.ArgumentParser) -> None:
    """The input group: which fields, which items, what to do with bad or repeated ones."""
    from tpt.augment.config import AugmentConfig
    from tpt.core.configs import defaults

    a = defaults(AugmentConfig)

    g = p.add_argument_group("input")
    g.add_argument(
        "--text-field",
        default=a["text_field"],
        help=f"field holding the document text (default: {a['text_field']})",
    )
    g.add_argument(
        "--id-field",
        default=a["id_field"],
        help=f"field holding the document id, kept unchanged (default: {a['id_field']}; absent: a content hash)",
    )
    g.add_argument("--limit", type=int, default=a["limit"], help="only the first N input items")
    g.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first malformed line, missing field or empty document",
    )
    g.add_argument(
        "--duplicate-ids",
        choices=["keep-both", "keep-first"],
        default=a["duplicate_ids"],
        help="documents whose id came before: keep-both (default; reported in summary.json and "
        "failures.jsonl, the record says duplicate_of) or keep-first (the later ones fail as duplicate_id)",
    )
    g.add_argument(
        "--control-tokens",
        choices=["neutralize", "reject", "pass"],
        default=a["control_tokens"],
        help="openai backend: a document holding the teacher's control strings (<|im_end|>, ...; "
        "from --tokenizer, else common chat markers) is neutralized (default; recorded), rejected "
        "as an input failure, or passed as is. In-process backends always encode documents as text",
    )


def _add_prompt_options(p: argparse.ArgumentParser) -> None:
    """The prompt group: the template, document truncation, the opened think turn."""
    from tpt.augment.config import AugmentConfig
    from tpt.core.configs import defaults

    a = defaults(AugmentConfig)
    from tpt.augment.backends.base import OPTION_DEFAULTS as B

    g = p.add_argument_group("prompt")
    g.add_argument(
        "--template",
        default=a["template"],
        help="'paper' (the paper's prompt, verbatim; default), 'random-focus' (App. A.3), "
        "or a text file with {{CONTEXT}}",
    )
    g.add_argument(
        "--max-doc-tokens",
        type=int,
        default=a["max_doc_tokens"],
        help=f"truncate documents to this many teacher tokens (default {a['max_doc_tokens']}, as the paper)",
    )
    g.add_argument(
        "--open-think",
        choices=["auto", "on", "off"],
        default=B.open_think,
        help="open the assistant turn with <think> (auto: only for non-reasoning teachers)",
    )


def _add_decoding_options(p: argparse.ArgumentParser) -> None:
    """The decoding group: sampling parameters (SamplingParams' defaults, the paper's)."""
    from tpt.augment.backends.base import SamplingParams

    s = SamplingParams()
    from tpt.augment.backends.base import OPTION_DEFAULTS as B

    g = p.add_argument_group("decoding (defaults from the paper)")
    g.add_argument("--temperature", type=float, default=s.temperature)
    g.add_argument("--top-p", type=float, default=s.top_p)
    g.add_argument("--max-thinking-tokens", type=int, default=s.max_tokens)
    g.add_argument(
        "--thinking-budget",
        metavar="TOKENS",
        default=None,
        help="the run's thinking tokens in all (4M) or per document on average (2000/doc; 2e9/1M: per 10^6 "
        "documents): each document gets its own cap, planned before generation and kept in budget.json "
        "(docs/thinking-budget.md); default: no budget, every document may use --max-thinking-tokens",
    )
    g.add_argument(
        "--allocation",
        choices=["uniform", "difficulty"],
        default="uniform",
        help="how --thinking-budget is shared: uniform (the same cap for every document) or difficulty (a "
        "cap growing with a cheap score of the document's length and reasoning density)",
    )
    g.add_argument(
        "--seed", type=int, default=s.seed, help="base seed (per document: derived from it and the id)"
    )
    g.add_argument(
        "--sampling-fields",
        choices=["full", "standard"],
        default=B.sampling_fields,
        help="openai: full (default) also sends top_k -1, min_p 0 and neutral penalties, so no "
        "server default applies unseen; standard: only the OpenAI API's fields (hosted APIs)",
    )
    g.add_argument(
        "--repetition-penalty",
        type=float,
        default=s.repetition_penalty,
        help="> 1: tokens already in the prompt or output less likely (transformers, vllm; openai: sent "
        "with --sampling-fields full); default 1, off, as the paper",
    )
    g.add_argument(
        "--frequency-penalty",
        type=float,
        default=s.frequency_penalty,
        help="subtracted from a token's logit per time it is in the output (default 0, off)",
    )
    g.add_argument(
        "--presence-penalty",
        type=float,
        default=s.presence_penalty,
        help="subtracted from the logit of each token in the output (default 0, off)",
    )


def _add_loop_guard_options(p: argparse.ArgumentParser) -> None:
    """The loop guard group (LoopGuardOptions' defaults)."""
    from tpt.augment.config import AugmentConfig
    from tpt.core.configs import defaults

    a = defaults(AugmentConfig)
    from tpt.augment.loopguard import LoopGuardOptions

    lg = LoopGuardOptions()
    g = p.add_argument_group("loop guard (stops a trajectory that falls into a repetition loop)")
    g.add_argument(
        "--loop-guard",
        choices=["on", "off"],
        default="on" if lg.enabled else "off",
        help="watch each trajectory as it is generated and stop it once it loops (default on)",
    )
    g.add_argument("--loop-ngram", type=int, default=lg.ngram, help=f"tokens per n-gram (default {lg.ngram})")
    g.add_argument(
        "--loop-window",
        type=int,
        default=lg.window,
        help=f"tokens looked back over (default {lg.window}); before it fills (or under a shorter "
        f"--max-thinking-tokens) the n-grams so far are judged once there are {lg.min_fill}",
    )
    g.add_argument(
        "--loop-threshold",
        type=float,
        default=lg.threshold,
        help=f"share of the window's n-grams repeated within it that stops the trajectory (default "
        f"{lg.threshold})",
    )
    g.add_argument(
        "--loop-policy",
        choices=["keep-prefix", "drop"],
        default=a["loop_policy"],
        help="a stopped trajectory: keep-prefix (default: a record with the thinking before the loop, "
        "finish_reason repetition, which validate's loop_stopped check drops) or drop (a failure)",
    )


def _add_backend_options(p: argparse.ArgumentParser) -> None:
    """The backend group: which teacher, where it is served, how it is driven."""
    from tpt.augment.backends.base import OPTION_DEFAULTS as B

    g = p.add_argument_group("backend")
    g.add_argument(
        "--backend",
        default=None,
        help="transformers (default, in-process; openai with --serve), openai (any OpenAI-compatible "
        "server), vllm (in-process, GPU), procedural (the reproduction testbed's expert)",
    )
    g.add_argument(
        "--model",
        default=B.model,
        help="HF model dir or .gguf file (transformers/vllm; default: the embedded "
        "SmolLM2-135M-Instruct), or the served model name (openai)",
    )
    g.add_argument(
        "--base-url", default=B.base_url, help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1"
    )
    g.add_argument(
        "--api-key-env",
        default=B.api_key_env,
        help="NAME of the environment variable holding the API key (the key is never written)",
    )
    g.add_argument(
        "--concurrency",
        type=int,
        default=B.concurrency,
        help=f"openai: requests in flight (default {B.concurrency})",
    )
    g.add_argument(
        "--request-timeout",
        type=float,
        default=B.request_timeout_s,
        help=f"openai: seconds per request (default {B.request_timeout_s:g})",
    )
    g.add_argument(
        "--max-retries",
        type=int,
        default=B.max_retries,
        help=f"openai: retries of transient errors (default {B.max_retries})",
    )
    g.add_argument(
        "--tokenizer",
        default=B.tokenizer,
        help="openai: local HF tokenizer of the served model, for exact --max-doc-tokens",
    )
    g.add_argument(
        "--batch-size",
        type=int,
        default=B.batch_size,
        help=f"transformers: sequences decoded together (default {B.batch_size}; vllm: the engine batch "
        "is --engine-arg max_num_seqs=N)",
    )
    g.add_argument("--dtype", default=B.dtype, choices=["bfloat16", "float32", "float16"])
    g.add_argument("--device", default=B.device, choices=["auto", "cpu", "cuda"])
    g.add_argument(
        "--engine-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra backend argument (repeatable); the value is parsed as JSON when it can be",
    )


def _add_output_options(p: argparse.ArgumentParser) -> None:
    """The output group: shards, their format, resuming."""
    from tpt.augment.config import AugmentConfig
    from tpt.core.configs import defaults

    a = defaults(AugmentConfig)
    g = p.add_argument_group("output")
    g.add_argument(
        "--shard-size",
        type=int,
        default=a["shard_size"],
        help=f"input items per output shard (default {a['shard_size']})",
    )
    g.add_argument(
        "--output-format",
        choices=("jsonl", "parquet"),
        default=a["output_format"],
        help="how each shard's records are written: jsonl (part-K.jsonl) or parquet (part-K.parquet, one "
        f"column per record field; docs/object-storage.md) (default {a['output_format']})",
    )
    g.add_argument(
        "--overwrite-config",
        action="store_true",
        help="continue in an output dir made with a different config (records keep provenance)",
    )
    g.add_argument(
        "--retry-failed",
        action="store_true",
        help="do again the documents whose generation failed in earlier runs (server errors, "
        "timeouts); input problems stay recorded",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress line")


def _add_executor_options(p: argparse.ArgumentParser) -> None:
    """The executor group, then the options the executors and --serve add themselves."""
    from tpt.augment.executors import EXECUTORS, OPTION_MODULES, load

    g = p.add_argument_group("executor (where the work runs)")
    g.add_argument(
        "--executor",
        choices=list(EXECUTORS),
        default="local",
        help="local (default: this process) or ray (workers on a Ray cluster; same output)",
    )
    for module in OPTION_MODULES:  # the Ray executor's options, then --serve's
        load(module).add_arguments(p)


def _engine_args(pairs: list[str]) -> dict:
    from tpt.core.errors import ConfigError

    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"--engine-arg {pair!r}: expected KEY=VALUE")
        key, value = pair.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def config_from_args(args: argparse.Namespace, *, output: Path | None = None):  # -> (AugmentConfig, Executor)
    """The AugmentConfig and the executor (local, or Ray; with --serve's teacher) the options ask for;
    `output` in place of --output (estimate: the sample's directory)."""
    from tpt.augment.backends.base import SamplingParams
    from tpt.augment.executors import SERVED_TEACHER, executor_from_args, load
    from tpt.augment.stage import AugmentConfig
    from tpt.core.errors import ConfigError

    served = load(SERVED_TEACHER)(args)  # --serve: a managed server per process, or None
    backend = args.backend or ("openai" if served else "transformers")
    if served and backend != "openai":
        raise ConfigError(f"--serve starts a server for the openai backend; drop --backend {backend}")
    from tpt.augment.loopguard import LoopGuardOptions

    sampling = SamplingParams(
        temperature=args.temperature,
        top_p=args.top_p,
        max_tokens=args.max_thinking_tokens,
        seed=args.seed,
        repetition_penalty=args.repetition_penalty,
        frequency_penalty=args.frequency_penalty,
        presence_penalty=args.presence_penalty,
        loop_guard=LoopGuardOptions(
            enabled=args.loop_guard == "on",
            ngram=args.loop_ngram,
            window=args.loop_window,
            threshold=args.loop_threshold,
        ),
    )
    options = {
        "model": served.spec.name if served else args.model,
        "base_url": args.base_url,
        "api_key_env": args.api_key_env,
        "concurrency": args.concurrency,
        "request_timeout_s": args.request_timeout,
        "max_retries": args.max_retries,
        "tokenizer": args.tokenizer,
        "batch_size": args.batch_size,
        "dtype": args.dtype,
        "device": args.device,
        "open_think": args.open_think,
        "engine_args": _engine_args(args.engine_arg),
        "sampling_fields": args.sampling_fields,
        "seed": args.seed,
    }
    cfg = AugmentConfig(
        inputs=args.inputs,
        output=args.output if output is None else output,
        backend=backend,
        backend_options=options,
        text_field=args.text_field,
        id_field=args.id_field,
        template=args.template,
        max_doc_tokens=args.max_doc_tokens,
        sampling=sampling,
        shard_size=args.shard_size,
        output_format=args.output_format,
        limit=args.limit,
        strict=args.strict,
        overwrite_config=args.overwrite_config,
        retry_failed=args.retry_failed,
        control_tokens=args.control_tokens,
        duplicate_ids=args.duplicate_ids,
        progress=not args.no_progress,
        loop_policy=args.loop_policy,
        thinking_budget=_budget(args),
        **({"fail_fast": args.fail_fast} if hasattr(args, "fail_fast") else {}),
    )
    return cfg, executor_from_args(args, served)


def _budget(args: argparse.Namespace):  # -> BudgetOptions | None
    from tpt.augment.budget import parse_budget
    from tpt.core.errors import ConfigError

    if args.thinking_budget is None:
        if args.allocation != "uniform":
            raise ConfigError("--allocation shares a --thinking-budget: give one too")
        return None
    return parse_budget(args.thinking_budget, args.allocation)


def run(args: argparse.Namespace) -> int:
    from tpt.augment.stage import run as run_stage
    from tpt.core.errors import ConfigError
    from tpt.storage.outputlock import lock_output_dir

    if args.check_server:
        from tpt.augment.server_check import run_check

        return run_check(check_config(args))
    missing = [name for name, given in (("INPUT", args.inputs), ("--output", args.output)) if not given]
    if missing:
        raise ConfigError(f"the following arguments are required: {', '.join(missing)}")
    cfg, executor = config_from_args(args)
    # Locked before a Ray cluster or a server starts: a second run on this --output fails at once.
    with lock_output_dir(args.output, stage="augment"):
        # An executor that runs the whole stage itself (Ray: workers read and commit their own shards).
        summary = getattr(executor, "run_stage", run_stage)(cfg, executor=executor)
    print_summary(summary, args.output, records=f"*.{cfg.output_format}")
    print(inspect_command(display(args.output)), file=sys.stderr)
    return exit_status(summary)


def check_config(args: argparse.Namespace):  # -> AugmentConfig
    """The config `--check-server` checks the server against (no INPUT or --output needed)."""
    from tpt.core.errors import ConfigError

    if (args.backend or "openai") != "openai" or getattr(args, "serve", None):
        raise ConfigError("--check-server checks a running server: use it with --base-url and --model")
    args.inputs = args.inputs or ["-"]
    cfg, _ = config_from_args(args, output=args.output or Path("check-server"))
    return cfg


def exit_status(s: AugmentSummary) -> int:
    """EXIT_STATUSES: 1 incomplete, 3 more failures than records or none at all (said on stderr), else 0."""
    import sys

    from tpt.core.errors import EXIT_FAILURES, EXIT_INCOMPLETE, EXIT_OK

    if not s.complete:
        return EXIT_INCOMPLETE
    if s.records == 0 or s.failures > s.records:
        print(
            f"tpt augment: finished with failures: {s.failures} failures and {s.records} records of "
            f"{s.input_items} input items (see {s.output}/failures.jsonl)",
            file=sys.stderr,
        )
        return EXIT_FAILURES
    return EXIT_OK


def print_summary(s: AugmentSummary, out: Path | str, *, records: str = "*.jsonl") -> None:
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(s.failures_by_reason.items())) or "none"
    d = s.duplicate_ids
    dups = f"; {d} documents repeat an earlier id ({s.duplicate_ids_policy})" if d else ""
    retried = f" ({r} failed documents retried)" if (r := s.retried_this_run) else ""
    dropped = s.failures_by_reason.get("repetition", 0)
    loop = (
        f"; {s.stopped_by_loop_guard + dropped} stopped by the loop guard"
        + (f" ({s.loop_guard_tokens} tokens)" if s.stopped_by_loop_guard else "")
        if s.stopped_by_loop_guard or dropped
        else ""
    )
    print(
        f"augment: {s.records} records, {s.failures} failures ({reasons}) of {s.input_items} input items"
        f"{'' if s.complete else ' (INCOMPLETE: re-run the same command to continue)'}\n"
        f"  teacher tokens: {s.doc_tokens} document, {s.prompt_tokens} prompt, {s.completion_tokens} "
        f"generated (mean {s.mean_completion_tokens:.1f} per trajectory); "
        f"{s.cut_by_length_limit} cut by the length limit; {s.truncated_documents} documents truncated"
        f"{loop}"
        f"{dups}\n"
        f"  this run: {s.new_records_this_run} new records in {s.wall_seconds:.1f} s{retried}\n"
        f"  output: {out}/shards/{records}  failures: {out}/failures.jsonl  summary: {out}/summary.json"
    )
