"""`tpt train` and `tpt sft` hold their run directory (rank 0 only: one lock per job, see
test_distributed.py for two ranks sharing one directory); a second job on it fails at once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tpt.cli import main

HOLD = (
    "import sys, time; from tpt.storage.outputlock import lock_output_dir; lock_output_dir(sys.argv[1], stage='train'); "
    "print('locked', flush=True); time.sleep(120)"
)
GSM8K = Path(__file__).resolve().parents[2] / "src" / "tpt" / "data" / "eval" / "gsm8k" / "train.jsonl"


@pytest.mark.parametrize("stage", ["train", "sft"])
def test_a_run_directory_in_use_is_refused_at_once(pack_dir, bpe_student, tmp_path, capsys, stage):
    run = tmp_path / "run"
    argv = {
        "train": ["train", str(pack_dir), "--output", str(run), "--tokens", "1024"],
        "sft": [
            "sft",
            str(GSM8K),
            "--init",
            str(bpe_student),
            "--output",
            str(run),
            "--max-examples",
            "4",
            "--seq-len",
            "256",
        ],
    }[stage]
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        t0 = time.monotonic()
        assert main([*argv, "--preset", "testbed", "--batch-tokens", "512", "--threads", "1"]) == 2
        assert time.monotonic() - t0 < 30
    finally:
        holder.kill()
        holder.wait()
    err = capsys.readouterr().err
    assert f"tpt {stage}: error: {run} is in use by `tpt train` (pid {holder.pid}" in err
    assert not (run / "manifest.json").exists() and not (run / "checkpoints").exists()
