"""Data parallel on CPU: `torchrun --nproc-per-node=2 -m tpt train` (gloo) matches one process with the
same global batch, with DDP and with FSDP2; one process with gradient accumulation matches too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tpt.cli import main

# fp32, so the comparison sees the distributed arithmetic and not bf16 rounding of differently shaped matmuls.
ARGS = [
    "--preset",
    "testbed",
    "--batch-tokens",
    "512",
    "--tokens",
    "5120",
    "--log-every",
    "1",
    "--precision",
    "fp32",
    "--threads",
    "1",
]


def losses(run_dir: Path) -> list[float]:
    return [json.loads(x)["loss"] for x in (run_dir / "metrics.jsonl").read_text().splitlines()]


def torchrun(pack: Path, out: Path, *extra: str) -> None:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node=2",
        "-m",
        "tpt",
        "train",
        str(pack),
        "--output",
        str(out),
        *ARGS,
        *extra,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def single(pack_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("single") / "run"
    assert main(["train", str(pack_dir), "--output", str(out), *ARGS]) == 0
    return out


def test_gradient_accumulation_matches_one_big_batch(pack_dir: Path, single: Path, tmp_path: Path) -> None:
    out = tmp_path / "accum"
    assert main(["train", str(pack_dir), "--output", str(out), *ARGS, "--micro-batch", "4"]) == 0
    assert losses(out) == pytest.approx(losses(single), rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_two_processes_match_one_with_the_same_global_batch(
    pack_dir: Path, single: Path, tmp_path: Path, mode: str
) -> None:
    out = tmp_path / mode
    torchrun(pack_dir, out, *(["--fsdp"] if mode == "fsdp" else []))
    assert len(losses(out)) == 10
    assert losses(out) == pytest.approx(losses(single), rel=1e-5)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["world_size"] == 2
    # The checkpoint is a whole model (FSDP's shards gathered), loadable and equal to the single run's.
    from safetensors.torch import load_file

    got = load_file(out / "checkpoints" / "tokens-000000005120" / "model.safetensors")
    want = load_file(single / "checkpoints" / "tokens-000000005120" / "model.safetensors")
    assert sorted(got) == sorted(want)
    assert max(float((got[k] - want[k]).abs().max()) for k in want) < 1e-4
