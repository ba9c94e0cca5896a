"""`tpt eval`: score models or every checkpoint of a training run on benchmarks and user tasks."""

from __future__ import annotations

import argparse
import sys

HELP = "score models or training checkpoints on GSM8K, MATH-500, MMLU, ARC, SVAMP or your own tasks, offline"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "models",
        nargs="*",
        metavar="MODEL",
        help="a Hugging Face model directory, a .gguf file, 'embedded' (the SmolLM2 teacher), or a training "
        "run directory (RUN_DIR or RUN_DIR/checkpoints: every checkpoint is scored)",
    )
    parser.add_argument(
        "--tasks",
        default="",
        help="comma-separated built-in tasks: gsm8k,math500,mmlu,arc_challenge,svamp",
    )
    parser.add_argument(
        "--task-file",
        action="append",
        default=[],
        metavar="FILE",
        help="a YAML/JSON task file (repeatable); see docs/eval.md",
    )
    parser.add_argument(
        "--output",
        metavar="FILE",
        help="results JSONL (rows are appended; samples go to FILE.samples.jsonl)",
    )
    parser.add_argument("--limit", type=int, help="score only the first N questions of each task")
    parser.add_argument(
        "--batch-size", type=int, default=32, help="prompts per generation batch (default 32)"
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        help="cap on generated tokens, for every task (default: the task's; built-ins 2048)",
    )
    parser.add_argument("--temperature", type=float, default=0.0, help="0 (default) is greedy decoding")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument(
        "--samples", type=int, default=1, help="samples per question; metrics are pass@1 averaged"
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument(
        "--engine", choices=("hf", "vllm"), default="hf", help="hf (CPU or GPU) or vllm (GPU)"
    )
    parser.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto")
    parser.add_argument("--device", default=None, help="cpu (default for hf), cuda, cuda:1, ...")
    parser.add_argument(
        "--threads", type=int, help="torch CPU threads (torch.set_num_threads), for parallel evals"
    )
    parser.add_argument(
        "--export-lm-eval",
        metavar="DIR",
        help="write lm-evaluation-harness task YAMLs (and their data) for the tasks to DIR; "
        "with no MODEL, only export",
    )
    parser.add_argument("--list-tasks", action="store_true", help="list the built-in tasks and exit")


def run(args: argparse.Namespace) -> int:
    from tpt.core.configs import from_args
    from tpt.core.errors import ConfigError
    from tpt.evaluate.builtin import BUILTIN_TASKS
    from tpt.evaluate.config import EvalConfig
    from tpt.evaluate.stage import resolve_tasks
    from tpt.evaluate.stage import run as evaluate

    if args.list_tasks:
        for name, factory in BUILTIN_TASKS.items():
            print(f"{name:15s} {factory().description}")
        return 0
    task_args = [t.strip() for t in args.tasks.split(",") if t.strip()] + list(args.task_file)
    if args.export_lm_eval:
        from tpt.evaluate.lm_eval_export import export_lm_eval
        from tpt.evaluate.prompts import prepare_task

        tasks = resolve_tasks(task_args)
        paths = export_lm_eval(
            [prepare_task(t, limit=args.limit) for t in tasks],
            args.export_lm_eval,
            max_new_tokens=args.max_new_tokens,
        )
        names = ",".join(p.stem for p in paths)
        print(f"wrote {len(paths)} task(s) to {args.export_lm_eval}; run them with:", file=sys.stderr)
        print(
            f"  HF_DATASETS_OFFLINE=1 lm_eval --model hf --model_args pretrained=CKPT --tasks {names} "
            f"--include_path {args.export_lm_eval}",
            file=sys.stderr,
        )
        if not args.models:
            return 0
    if not args.output and args.models:
        raise ConfigError("--output FILE is required: the results JSONL to write")
    config = from_args(EvalConfig, args, convert={"models": tuple}, tasks=tuple(task_args))
    summary = evaluate(config)
    print(f"wrote {len(summary.rows)} new result rows to {args.output}", file=sys.stderr)
    return 0
