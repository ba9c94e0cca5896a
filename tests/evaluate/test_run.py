"""End to end: `tpt eval` on tiny checkpoints, a RUN_DIR sweep, result rows and samples, resume, bad input."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from tpt.cli import main
from tpt.core.errors import InputError
from tpt.evaluate.models import expand_models
from tpt.evaluate.stage import EvalConfig, run


def evaluate(models: list[str], tasks: list, *, log=None, **settings) -> list[dict]:
    """The rows of one `run` (the tests compare them with the lines of the output file)."""
    return list(run(EvalConfig(models=models, tasks=tasks, **settings), log=log).rows)


def _task_file(tmp_path: Path, problems_file: Path) -> Path:
    spec = {
        "tasks": [
            {
                "name": "direct",
                "data": str(problems_file),
                "id_field": "id",
                "prompt": "{question} =",
                "stop": [" .", "\n"],
                "max_new_tokens": 16,
                "extract": "first_number",
            },
            {
                "name": "think",
                "data": str(problems_file),
                "id_field": "id",
                "prompt": "{question} <think>",
                "stop": ["</think>"],
                "max_new_tokens": 64,
                "extract": {"accuracy": "last_number", "accuracy_first": "first_number"},
            },
        ]
    }
    path = tmp_path / "tasks.json"
    path.write_text(json.dumps(spec), encoding="utf-8")
    return path


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_run_dir_sweep_writes_rows_and_samples(tmp_path: Path, run_dir: Path, problems_file: Path) -> None:
    """Every checkpoint x task x metric gives one row; the trained checkpoint solves the problems."""
    tasks = _task_file(tmp_path, problems_file)
    out = tmp_path / "eval" / "results.jsonl"
    code = main(["eval", str(run_dir), "--task-file", str(tasks), "--output", str(out), "--threads", "1"])
    assert code == 0
    rows = _rows(out)
    assert {(r["checkpoint"], r["tokens_seen"]) for r in rows} == {
        ("tokens-000000001024", 1024),
        ("tokens-000000004096", 4096),
    }
    assert all(r["model"] == str(run_dir) for r in rows)
    value = {(r["tokens_seen"], r["task"], r["metric"]): r["value"] for r in rows}
    assert value[(4096, "direct", "accuracy")] == 1.0
    assert value[(4096, "think", "accuracy")] == 1.0
    # the derivation's first number is an operand, not the answer: the rule matters
    assert value[(4096, "think", "accuracy_first")] < 0.5
    assert value[(1024, "direct", "accuracy")] < 0.5  # random weights
    assert value[(4096, "think", "extraction_failed")] == 0.0
    for r in rows:
        assert set(r) == {
            "model",
            "checkpoint",
            "tokens_seen",
            "task",
            "metric",
            "value",
            "n",
            "config",
        }
        assert r["n"] == 12
        assert r["config"]["step"] in (4, 16)
    samples = _rows(out.with_name("results.samples.jsonl"))
    assert len(samples) == 2 * 2 * 12
    s = next(s for s in samples if s["tokens_seen"] == 4096 and s["task"] == "think" and s["id"] == "p0")
    assert s["prompt"].endswith("<think>")
    assert s["extracted"]["accuracy"] == s["gold"] and s["correct"]["accuracy"] is True
    assert s["finish_reason"] == "stop" and "</think>" not in s["generation"]
    [row] = [
        r for r in rows if r["tokens_seen"] == 4096 and r["task"] == "think" and r["metric"] == "accuracy"
    ]
    assert s["fingerprint"] == row["config"]["fingerprint"]  # ties the sample to its rows (tpt compare)

    # A second run with the same output resumes: nothing is generated again.
    assert main(["eval", str(run_dir), "--task-file", str(tasks), "--output", str(out)]) == 0
    assert len(_rows(out)) == len(rows)
    # A changed setting is a new config: new rows.
    assert (
        main(
            [
                "eval",
                str(run_dir / "checkpoints"),
                "--task-file",
                str(tasks),
                "--output",
                str(out),
                "--limit",
                "2",
            ]
        )
        == 0
    )
    new = _rows(out)[len(rows) :]
    assert {r["n"] for r in new} == {2} and all(r["model"] == str(run_dir) for r in new)


def test_python_entry_point(trained_model_dir: Path, tmp_path: Path, problems_file: Path) -> None:
    rows = evaluate(
        [str(trained_model_dir)],
        [str(_task_file(tmp_path, problems_file))],
        limit=4,
        log=None,
        batch_size=2,
    )
    acc = {r["task"]: r["value"] for r in rows if r["metric"] == "accuracy"}
    assert acc == {"direct": 1.0, "think": 1.0}
    assert all(r["checkpoint"] is None and r["n"] == 4 for r in rows)


def test_sampling_rows_average_samples(trained_model_dir: Path, tmp_path: Path, problems_file: Path) -> None:
    rows = evaluate(
        [str(trained_model_dir)],
        [str(_task_file(tmp_path, problems_file))],
        limit=3,
        temperature=0.6,
        top_p=0.95,
        samples=4,
        log=None,
    )
    acc = next(r for r in rows if r["task"] == "think" and r["metric"] == "accuracy")
    assert acc["config"]["samples"] == 4 and acc["config"]["temperature"] == 0.6
    assert acc["value"] * 12 == pytest.approx(round(acc["value"] * 12))  # a mean of 3 x 4 zero/one scores


def test_checkpoint_discovery(run_dir: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    refs = expand_models([str(run_dir)])
    assert [(r.checkpoint, r.tokens_seen, r.step) for r in refs] == [
        ("tokens-000000001024", 1024, 4),
        ("tokens-000000004096", 4096, 16),
    ]
    [one] = expand_models([str(run_dir / "checkpoints" / "tokens-000000004096")])
    assert one.checkpoint == "tokens-000000004096" and one.tokens_seen == 4096
    [plain] = expand_models([str(tiny_model_dir)])
    assert plain.checkpoint is None and plain.tokens_seen is None
    (tmp_path / "empty_run" / "checkpoints").mkdir(parents=True)
    with pytest.raises(InputError, match="no complete checkpoint yet"):
        expand_models([str(tmp_path / "empty_run")])
    (tmp_path / "stuff").mkdir()
    with pytest.raises(InputError, match="neither a model directory"):
        expand_models([str(tmp_path / "stuff")])


def test_cli_bad_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tiny_model_dir: Path
) -> None:
    out = str(tmp_path / "r.jsonl")
    assert main(["eval", str(tiny_model_dir), "--tasks", "gsm9k", "--output", out]) == 2
    assert "unknown task 'gsm9k'; did you mean 'gsm8k'?" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing"), "--tasks", "gsm8k", "--output", out]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["eval", str(tiny_model_dir), "--tasks", "gsm8k"]) == 2
    assert "--output FILE is required" in capsys.readouterr().err
    assert main(["eval", str(tiny_model_dir), "--tasks", "gsm8k", "--output", out, "--samples", "3"]) == 2
    assert "needs sampling" in capsys.readouterr().err
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    assert main(["eval", str(broken), "--tasks", "gsm8k", "--output", out, "--limit", "1"]) == 2
    assert "could not load" in capsys.readouterr().err


def test_builtin_task_runs_on_a_tiny_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The bundled GSM8K protocol end to end (random weights: the mechanics, not the score)."""
    rows = evaluate([str(tiny_model_dir)], ["gsm8k", "mmlu"], limit=2, max_new_tokens=8, log=None)
    metrics = {(r["task"], r["metric"]) for r in rows}
    assert ("gsm8k", "accuracy") in metrics and ("gsm8k", "accuracy_flexible") in metrics
    assert ("mmlu", "accuracy") in metrics
    truncated = next(r for r in rows if r["metric"] == "mean_generated_tokens" and r["task"] == "gsm8k")
    assert 0 < truncated["value"] <= 8
    # 5-shot GSM8K prompts do not fit this model's 256 positions: the rows say so.
    assert {r.get("over_context") for r in rows if r["task"] == "gsm8k"} == {2}


def test_list_tasks(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--list-tasks"]) == 0
    listed = capsys.readouterr().out
    for name in ("gsm8k", "math500", "mmlu", "arc_challenge", "svamp"):
        assert name in listed


@pytest.mark.slow
def test_embedded_teacher_follows_the_mc_format(tmp_path: Path) -> None:
    """A real model (SmolLM2-135M-Instruct from the GGUF) on 2 ARC questions: its replies follow the
    exemplars' "The answer is (X)." and every one is extracted; GSM8K replies are cut at a stop."""
    pytest.importorskip("gguf")
    try:
        from tpt.core.hfmodel import embedded_gguf

        embedded_gguf()
    except Exception as exc:  # the embedded teacher is an optional install
        pytest.skip(f"embedded teacher not available: {exc}")
    out = tmp_path / "r.jsonl"
    rows = evaluate(
        ["embedded"],
        ["arc_challenge", "gsm8k"],
        output=out,
        limit=2,
        max_new_tokens=48,
        threads=1,
        log=None,
    )
    value = {(r["task"], r["metric"]): r["value"] for r in rows}
    assert value[("arc_challenge", "extraction_failed")] == 0.0
    assert all(r["config"]["dtype"] == "bfloat16" for r in rows)
    samples = _rows(out.with_name("r.samples.jsonl"))
    arc = [s for s in samples if s["task"] == "arc_challenge"]
    assert all("answer is (" in s["generation"] for s in arc)
    gsm = [s for s in samples if s["task"] == "gsm8k"]
    assert all("Question:" not in s["generation"] and "\n\n" not in s["generation"] for s in gsm)


def test_resume_after_a_line_cut_by_a_kill(
    trained_model_dir: Path, tmp_path: Path, problems_file: Path
) -> None:
    """A kill while a task's rows are written leaves a half line: that task runs again, the rest not."""
    tasks = str(_task_file(tmp_path, problems_file))
    out = tmp_path / "r.jsonl"
    first = evaluate([str(trained_model_dir)], [tasks], output=out, limit=2, log=None)
    assert [r["task"] for r in first] == ["direct"] * 4 + ["think"] * 5
    lines = out.read_text().splitlines()
    out.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:40])  # the last row half written
    again = evaluate([str(trained_model_dir)], [tasks], output=out, limit=2, log=None)
    assert [r["task"] for r in again] == ["think"] * 5
    text = out.read_text().splitlines()
    assert [json.loads(x) for x in text[:8]] == first[:8]  # the half line is gone
    assert [json.loads(x) for x in text[8:]] == again
    assert len(evaluate([str(trained_model_dir)], [tasks], output=out, limit=2, log=None)) == 0


def test_jsonl_lines_survive_splitlines() -> None:
    """Readers split result files with str.splitlines(), which also breaks at U+0085 and U+2028."""
    from tpt.evaluate.stage import jsonl_line

    rec = {"prompt": "create\u0085 a\u2028b\u2029c é"}
    [line] = jsonl_line(rec).splitlines()
    assert json.loads(line) == rec


def test_run_returns_a_typed_summary(trained_model_dir: Path, tmp_path: Path, problems_file: Path) -> None:
    out = tmp_path / "r.jsonl"
    config = EvalConfig(
        models=[trained_model_dir], tasks=[str(_task_file(tmp_path, problems_file))], output=out, limit=2
    )
    summary = run(config, log=None)
    assert summary.output == out and list(summary.rows) == _rows(out) and summary.wall_seconds > 0
    direct = [r["value"] for r in _rows(out) if (r["task"], r["metric"]) == ("direct", "accuracy")]
    assert summary.value("direct", "accuracy") == direct and len(direct) == 1
    assert run(config, log=None).rows == ()  # done before: nothing new


def test_run_logs_to_the_stderr_current_at_call_time(
    trained_model_dir: Path, tmp_path: Path, problems_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The default stream is looked up per call: a default bound at import time would write to a stream
    # that pytest (or a notebook) has since closed or replaced.
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    config = EvalConfig(models=[trained_model_dir], tasks=[str(_task_file(tmp_path, problems_file))], limit=1)
    run(config)
    assert "direct" in stream.getvalue()
