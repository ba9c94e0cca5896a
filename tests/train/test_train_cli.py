"""`tpt train` end to end on a tiny PACK_DIR: training, checkpoints, resume, bad input, non-finite steps."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tpt.cli import main

BASE = ["--preset", "testbed", "--batch-tokens", "512", "--threads", "1"]


def read_metrics(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def train(pack: Path, out: Path, *extra: str) -> int:
    return main(["train", str(pack), "--output", str(out), *BASE, *extra])


def test_tiny_model_trains_saves_loadable_checkpoints_and_mid_trains(pack_dir: Path, tmp_path: Path) -> None:
    """Loss falls; checkpoints sit at the asked token points plus the end, load with transformers and
    generate; a second run mid-trains from one (--init) and starts where the first one ended."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = tmp_path / "run"
    assert train(pack_dir, run, "--tokens", "40960", "--save-at", "5000,10k", "--log-every", "5") == 0
    metrics = read_metrics(run)
    assert [m["step"] for m in metrics] == list(range(5, 81, 5))
    first, last = metrics[0], metrics[-1]
    assert last["loss"] < first["loss"] - 1.0
    for key in ("tokens", "loss", "loss_document", "loss_thinking", "lr", "tokens_per_second"):
        assert last[key] is not None, key
    assert last["tokens"] == 40960 and last["lr"] == pytest.approx(2e-3)
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["tokens-000000005120", "tokens-000000010240", "tokens-000000040960"]
    info = json.loads((run / "checkpoints" / names[-1] / "tpt_checkpoint.json").read_text())
    assert (info["tokens_seen"], info["step"], info["skipped_steps"]) == (40960, 80, 0)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stage"] == "train" and manifest["fingerprint"]

    final = run / "checkpoints" / names[-1]
    model = AutoModelForCausalLM.from_pretrained(final)
    tok = AutoTokenizer.from_pretrained(final)
    prompt = tok("1 + 2 = 3 .", return_tensors="pt")
    out = model.generate(**prompt, max_new_tokens=6, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > prompt["input_ids"].shape[1]
    assert torch.isfinite(model(**prompt).logits).all()

    mid = tmp_path / "mid"
    assert (
        main(
            [
                "train",
                str(pack_dir),
                "--output",
                str(mid),
                "--init",
                str(final),
                "--tokens",
                "2048",
                "--batch-tokens",
                "512",
                "--warmup-steps",
                "1",
                "--log-every",
                "1",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    mid_metrics = read_metrics(mid)
    assert mid_metrics[0]["loss"] < first["loss"] - 1.0  # it starts from the trained weights
    assert mid_metrics[0]["lr"] == pytest.approx(4e-5)  # the midtrain preset: lr 4e-5, cosine
    assert mid_metrics[-1]["lr"] == pytest.approx(4e-6)
    assert json.loads((mid / "manifest.json").read_text())["config"]["train"]["extra"]["preset"] == "midtrain"


@pytest.mark.slow
def test_resume_after_kill_9_reproduces_the_uninterrupted_run(pack_dir: Path, tmp_path: Path) -> None:
    """Kill a run with SIGKILL right after its first checkpoint, re-run the same command: it resumes
    there, and every logged loss equals the uninterrupted run's (exact on CPU up to float noise)."""
    args = ["--tokens", "40960", "--save-every", "5120", "--log-every", "1", "--precision", "fp32"]
    reference = tmp_path / "reference"
    assert train(pack_dir, reference, *args) == 0

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "tpt", "train", str(pack_dir), "--output", str(run), *BASE, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_ckpt = run / "checkpoints" / "tokens-000000005120" / "tpt_checkpoint.json"
    deadline = time.monotonic() + 120
    while not first_ckpt.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    assert first_ckpt.exists(), "the run never wrote its first checkpoint"
    assert not (run / "checkpoints" / "tokens-000000040960").exists(), "the run finished before the kill"

    assert train(pack_dir, run, *args) == 0
    got, want = read_metrics(run), read_metrics(reference)
    assert [m["step"] for m in got] == list(range(1, 81))  # no step logged twice, none missing
    assert [m["loss"] for m in got] == pytest.approx([m["loss"] for m in want], rel=1e-6)
    # Re-running a finished run does nothing and says so.
    assert train(pack_dir, run, *args) == 0


def test_non_finite_steps_are_skipped_counted_and_abort_a_diverged_run(
    pack_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """lr 1e30 blows the weights up after one step; every later step is non-finite. Skipped steps
    leave the weights untouched (checkpoints at steps 2 and 4 are identical) and are counted, and
    after 50 in a row the run stops with an error that says what to change."""
    from safetensors.torch import load_file

    run = tmp_path / "run"
    code = train(
        pack_dir,
        run,
        "--tokens",
        "60000",
        "--lr",
        "1e30",
        "--warmup-steps",
        "0",
        "--precision",
        "fp32",
        "--save-at",
        "1024,2048",
        "--log-every",
        "1",
    )
    assert code == 2
    assert "consecutive steps had a non-finite loss" in capsys.readouterr().err
    a = load_file(run / "checkpoints" / "tokens-000000001024" / "model.safetensors")
    b = load_file(run / "checkpoints" / "tokens-000000002048" / "model.safetensors")
    assert all((a[k] == b[k]).all() for k in a)
    info = json.loads((run / "checkpoints" / "tokens-000000002048" / "tpt_checkpoint.json").read_text())
    assert info["skipped_steps"] == 3
    metrics = read_metrics(run)
    assert metrics[0]["loss"] is not None and metrics[-1]["skipped_steps"] == len(metrics) - 1


def test_bad_input_is_refused_before_any_work(
    pack_dir: Path, tmp_path: Path, bpe_student: Path, capsys: pytest.CaptureFixture
) -> None:
    def error(*argv: str) -> str:
        assert main(["train", *argv, *BASE]) == 2
        return capsys.readouterr().err

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    assert "is not packed tpt data" in error(str(corpus), "--output", str(tmp_path / "a"), "--tokens", "4096")
    assert "smaller than one batch" in error(
        str(pack_dir), "--output", str(tmp_path / "b"), "--tokens", "100"
    )
    msg = error(
        str(pack_dir),
        "--output",
        str(tmp_path / "c"),
        "--tokens",
        "4096",
        "--init",
        str(bpe_student),
    )
    assert "tokenizer of" in msg and "disagree" in msg
    assert not (tmp_path / "c").exists()

    from transformers import AutoTokenizer

    from tpt.train.model import build_config, create_model

    small = tmp_path / "small"
    create_model(build_config("tiny", vocab_size=10, seq_len=32), seed=0).save_pretrained(small)
    msg = error(str(pack_dir), "--output", str(tmp_path / "d"), "--tokens", "4096", "--init", str(small))
    assert "10 embedding rows" in msg and "vocab_size 18" in msg
    AutoTokenizer.from_pretrained(pack_dir / "tokenizer").save_pretrained(small)  # same tokenizer

    run = tmp_path / "e"
    assert train(pack_dir, run, "--tokens", "1024") == 0
    assert "different config (changed: seed)" in error(
        str(pack_dir), "--output", str(run), "--tokens", "1024", "--seed", "1"
    )


def test_block_attention_trains_without_cross_sample_targets(pack_dir: Path, tmp_path: Path) -> None:
    """--block-attention restarts positions per packed sample; the first token of each sample is then
    not a target, so fewer target tokens are counted than with plain causal packing."""
    plain, block = tmp_path / "plain", tmp_path / "block"
    assert train(pack_dir, plain, "--tokens", "1024", "--log-every", "1") == 0
    assert train(pack_dir, block, "--tokens", "1024", "--log-every", "1", "--block-attention") == 0
    p, b = read_metrics(plain)[0], read_metrics(block)[0]
    assert b["target_tokens"] < p["target_tokens"]
    assert b["tokens_template"] == p["tokens_template"]  # <think>, </think> and <eos> follow in-sample
    assert b["tokens_document"] < p["tokens_document"]  # each sample's first token is a document token


def test_a_budget_larger_than_the_data_says_how_many_epochs(
    pack_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """64 rows of 32 tokens = 2048 data tokens: 4096 tokens is 2 epochs, said at start (the
    data-constrained regime), in metrics.jsonl and in the final report."""
    assert train(pack_dir, tmp_path / "twice", "--tokens", "4096", "--log-every", "2") == 0
    err = capsys.readouterr().err
    start, done = err.index("warning: the budget of 4,096 tokens is 2.00 epochs"), err.index("done")
    assert "data-constrained regime" in err and start < done
    assert "8 steps (2.00 epochs over the packed data)" in err
    metrics = read_metrics(tmp_path / "twice")
    assert metrics[-1]["epoch"] == 2.0 and metrics[0]["epoch"] == 0.5
    assert train(pack_dir, tmp_path / "once", "--tokens", "2048") == 0
    err = capsys.readouterr().err
    assert "warning" not in err and "(1.00 epochs over the packed data)" in err


def test_run_from_python_returns_a_summary_and_resumes(pack_dir: Path, tmp_path: Path) -> None:
    """train.stage.run(TrainConfig) does what the command does and says where the run stands."""
    from dataclasses import replace

    from tpt.train.config import TrainConfig, testbed
    from tpt.train.stage import run

    config = TrainConfig(
        data_dir=pack_dir, output=tmp_path / "run", tokens=2048, preset=testbed().override(batch_tokens=512)
    )
    first = run(config)
    assert (first.stage, first.steps, first.total_steps, first.tokens_seen) == ("train", 4, 4, 2048)
    assert first.final_checkpoint == tmp_path / "run" / "checkpoints" / "tokens-000000002048"
    assert first.resumed_from is None and first.skipped_steps == 0 and first.wall_seconds > 0
    longer = run(replace(config, tokens=4096))  # constant lr: the budget can grow
    assert (longer.steps, longer.tokens_seen, longer.resumed_from) == (8, 4096, first.final_checkpoint)
    again = run(replace(config, tokens=4096))
    assert (again.steps, again.final_checkpoint) == (8, longer.final_checkpoint)  # nothing left to do
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["config"]["train"]["extra"] == {
        "preset": "testbed"
    }
