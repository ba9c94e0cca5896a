"""`tpt eval`: score models x tasks, writing result rows and samples. `run(EvalConfig(...)) -> EvalSummary`.

    from tpt.evaluate.config import EvalConfig
    from tpt.evaluate.stage import run
    summary = run(EvalConfig(models=["runs/a"], tasks=["gsm8k", "my_task.yaml"], output="results.jsonl", limit=50))

Each row: {"model", "checkpoint", "tokens_seen", "task", "metric", "value", "n", "config"}; the
per-sample records (prompt, generation, extracted and gold answers) go beside the output file in
`<output stem>.samples.jsonl`. A re-run with the same output skips (model, task) pairs already done
with the same config, so an interrupted sweep over checkpoints resumes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tpt.core.artifacts import fingerprint, write_atomic
from tpt.core.errors import ArtifactError, ConfigError
from tpt.core.hfmodel import resolve_model_dir
from tpt.core.jsontypes import JSONObject
from tpt.evaluate.builtin import get_builtin
from tpt.evaluate.config import EvalConfig
from tpt.evaluate.engine import Engine, build_engine
from tpt.evaluate.hf_engine import resolve_dtype
from tpt.evaluate.models import ModelRef, expand_models
from tpt.evaluate.prompts import PreparedTask, prepare_task
from tpt.evaluate.scoring import EXTRA_METRICS, score_task
from tpt.evaluate.spec import TaskSpec
from tpt.evaluate.taskfile import load_task_file
from tpt.formats.summaries import EvalSummary, ResultRow


def resolve_tasks(tasks: Iterable[str | TaskSpec]) -> list[TaskSpec]:
    """Task names (built-in), task-file paths (.yaml/.yml/.json) or TaskSpecs, in order, names unique."""
    out: list[TaskSpec] = []
    for t in tasks:
        if isinstance(t, TaskSpec):
            out.append(t)
        elif str(t).endswith((".yaml", ".yml", ".json")):
            out.extend(load_task_file(t))
        else:
            out.append(get_builtin(str(t)))
    names = [t.name for t in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"task name(s) given twice: {', '.join(dupes)}")
    if not out:
        raise ConfigError("no task to run: pass --tasks and/or --task-file")
    return out


def samples_path_for(output: Path) -> Path:
    return output.with_name(output.name.removesuffix(".jsonl") + ".samples.jsonl")


def row_config(
    settings: EvalConfig, prepared: PreparedTask, engine: str, dtype: str, ref: ModelRef
) -> JSONObject:
    params = settings.gen_params(prepared.task)
    config = {
        "engine": engine,
        "dtype": dtype,
        "batch_size": settings.batch_size,
        "max_new_tokens": params.max_new_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "samples": params.samples,
        "seed": params.seed,
        "limit": settings.limit,
        "num_available": prepared.num_available,
        "step": ref.step,
        "task": prepared.task.as_config(),
    }
    config["fingerprint"] = fingerprint(config)
    return config


def done_keys(output: Path | None) -> dict[tuple[Any, ...], set[str]]:
    """(model, checkpoint, task, fingerprint) -> the metrics already in an output file."""
    keys: dict[tuple[Any, ...], set[str]] = {}
    if output is None or not output.is_file():
        return keys
    lines = [line for line in output.read_text(encoding="utf-8").split("\n") if line.strip()]
    for n, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise ArtifactError(f"{output}: line {n} is not valid JSON; fix or remove it") from None
        key = (row["model"], row["checkpoint"], row["task"], row["config"].get("fingerprint"))
        keys.setdefault(key, set()).add(row["metric"])
    return keys


def add_gold_loglik(engine: Any, prep: Any, score: Any) -> None:
    """The task's `loglik_target` scored after each prompt: metric `gold_loglik` and a per-sample value."""
    if not hasattr(engine, "loglik"):
        raise ConfigError(f"task {prep.task.name}: loglik_target needs --engine hf")
    targets = [prep.task.loglik_target.format(**{**ex.fields, "answer": ex.gold}) for ex in prep.examples]
    values = engine.loglik(list(prep.prompts), targets)
    by_id = {ex.id: v for ex, v in zip(prep.examples, values, strict=True)}
    score.metrics["gold_loglik"] = sum(values) / len(values) if values else 0.0
    for sample in score.samples:
        sample["gold_loglik"] = by_id[sample["id"]]


def metric_names(task: TaskSpec) -> list[str]:
    """The metrics a task's rows carry (scoring.py adds the last three)."""
    return (
        [name for name, _ in task.metrics]
        + list(EXTRA_METRICS)
        + (["gold_loglik"] if task.loglik_target else [])
    )


def jsonl_line(rec: Mapping[str, object]) -> str:
    """One JSON line; U+0085/U+2028/U+2029 (in MMLU text) are escaped, so str.splitlines() is safe."""
    text = json.dumps(rec, ensure_ascii=False)
    for ch in ("\x85", "\u2028", "\u2029"):
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return text + "\n"


def append_jsonl(path: Path, records: Iterable[Mapping[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        for rec in records:
            f.write(jsonl_line(rec))
        f.flush()
        os.fsync(f.fileno())


def drop_partial_last_line(path: Path) -> None:
    """A kill during an append can leave half a line at the end: remove it (atomically)."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    text = path.read_text(encoding="utf-8")
    head, _, last = text.rstrip("\n").rpartition("\n")
    try:
        json.loads(last)
        if text.endswith("\n"):
            return
    except json.JSONDecodeError:
        text, last = (head + "\n" if head else ""), ""
    write_atomic(path, text if not last else text + "\n")


_STDERR: Any = object()  # the stream current at call time (pytest and notebooks swap sys.stderr)


def run(config: EvalConfig, *, log: Any = _STDERR) -> EvalSummary:
    """Score every model (checkpoints expanded) on every task; the summary holds this call's rows.

    With config.output, rows are appended there (and samples beside it) as each (model, task)
    finishes; the output file is locked for the call (a second `tpt eval` on it fails at once).
    `log` takes the progress lines (None: silent).
    """
    started = time.monotonic()
    log = sys.stderr if log is _STDERR else log
    if config.output is None:
        rows = _evaluate(config, log)
    else:
        from tpt.storage.outputlock import lock_output_file

        with lock_output_file(config.output, stage="eval"):
            rows = _evaluate(config, log)
    return EvalSummary(
        output=config.output, rows=tuple(rows), wall_seconds=round(time.monotonic() - started, 3)
    )


def _evaluate(config: EvalConfig, log: Any) -> list[ResultRow]:
    settings, output = config, config.output
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    specs = resolve_tasks(config.tasks)
    refs = expand_models(list(config.models))
    prepared = [prepare_task(t, limit=settings.limit) for t in specs]
    out_path = Path(output) if output is not None else None
    if out_path is not None:
        drop_partial_last_line(out_path)
        drop_partial_last_line(samples_path_for(out_path))
    done = done_keys(out_path)
    rows: list[ResultRow] = []
    for ref in refs:
        model_dir = resolve_model_dir(ref.path)
        dtype = resolve_dtype(model_dir, settings.dtype) if settings.engine == "hf" else settings.dtype
        engine: Engine | None = None
        for prep in prepared:
            config = row_config(settings, prep, settings.engine, dtype, ref)
            key = (ref.model, ref.checkpoint, prep.task.name, config["fingerprint"])
            if set(metric_names(prep.task)) <= done.get(key, set()):
                _say(
                    log,
                    f"[eval] {ref.checkpoint or ref.model} {prep.task.name}: done before, skipped",
                )
                continue
            if engine is None:
                engine = build_engine(
                    settings.engine,
                    model_dir,
                    dtype=dtype,
                    device=settings.device,
                    batch_size=settings.batch_size,
                    seed=settings.seed,
                )
            rows.extend(_score(engine, settings, prep, ref, config, out_path, log))
        if engine is not None:
            engine.close()
    return rows


def _score(
    engine: Engine,
    settings: EvalConfig,
    prep: PreparedTask,
    ref: ModelRef,
    config: JSONObject,
    out_path: Path | None,
    log: Any,
) -> list[ResultRow]:
    """Score one model on one task: its rows (appended to the output, the samples beside it)."""
    t0 = time.perf_counter()
    completions = engine.generate(list(prep.prompts), settings.gen_params(prep.task))
    score = score_task(prep, completions)
    if prep.task.loglik_target:
        add_gold_loglik(engine, prep, score)
    seconds = time.perf_counter() - t0
    base = {
        "model": ref.model,
        "checkpoint": ref.checkpoint,
        "tokens_seen": ref.tokens_seen,
    }
    # Prompts that do not fit the model's context are still generated for (positions past it
    # are extrapolation); say so rather than truncate the protocol's few-shot prompt.
    over = getattr(engine, "over_context", 0)
    task_rows = [
        {
            **base,
            "task": prep.task.name,
            "metric": m,
            "value": v,
            "n": score.n,
            **({"over_context": over} if over else {}),
            "config": config,
        }
        for m, v in score.metrics.items()
    ]
    if out_path is not None:
        # The row config's fingerprint ties each sample to its rows (a file can hold one checkpoint
        # scored with two settings); `tpt compare` reads the per-item results by it.
        sample_base = {**base, "fingerprint": config["fingerprint"]}
        append_jsonl(samples_path_for(out_path), ({**sample_base, **s} for s in score.samples))
        append_jsonl(out_path, task_rows)
    primary = prep.task.metrics[0][0]
    name = ref.checkpoint or ref.model
    tokens = score.metrics["mean_generated_tokens"]
    _say(
        log,
        f"[eval] {name} {prep.task.name}: {primary}={score.metrics[primary]:.4f} n={score.n} "
        f"({seconds:.1f} s, {tokens:.0f} tokens/sample)",
    )
    if over:
        _say(
            log,
            f"[eval] warning: {over} of {len(prep.prompts)} {prep.task.name} prompts plus "
            f"max_new_tokens exceed {name}'s context of {engine.context} tokens; its "
            "positions past that are extrapolation (rows carry over_context)",
        )
    return task_rows


def _say(log: Any, message: str) -> None:
    if log is not None:
        print(message, file=log, flush=True)
