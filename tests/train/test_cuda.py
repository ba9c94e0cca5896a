"""`tpt train` on CUDA with bf16 autocast (run with TPT_GPU=1 on a GPU machine; skipped elsewhere)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tpt.cli import main

BASE = ["--preset", "testbed", "--batch-tokens", "512", "--threads", "1"]


@pytest.mark.gpu
def test_tiny_model_trains_on_cuda_in_bf16(pack_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    argv = ["train", str(pack_dir), "--output", str(run), *BASE, "--device", "cuda", "--precision", "bf16"]
    assert main([*argv, "--tokens", "20480", "--log-every", "5"]) == 0
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["tokens"] == 20480
    assert metrics[-1]["loss"] < metrics[0]["loss"] - 0.5
    info = json.loads(next((run / "checkpoints").glob("*/tpt_checkpoint.json")).read_text())
    assert info["tokens_seen"] == 20480
