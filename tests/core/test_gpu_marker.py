"""The `gpu` marker (tests/conftest.py): skipped without TPT_GPU=1, and with it where CUDA is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CONFTEST = Path(__file__).parents[1] / "conftest.py"


def run_pytest(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    shutil.copy(CONFTEST, tmp_path / "conftest.py")
    (tmp_path / "test_probe.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.gpu\ndef test_on_gpu():\n    import torch\n    assert torch.cuda.is_available()\n\n"
        "def test_on_cpu():\n    pass\n",
        encoding="utf-8",
    )
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "-o", "markers=gpu: cuda", "-c"]
    argv += [os.devnull, "--rootdir", str(tmp_path), str(tmp_path)]
    return subprocess.run(argv, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)


def test_gpu_tests_are_skipped_without_tpt_gpu(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TPT_GPU"}
    out = run_pytest(tmp_path, env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed, 1 skipped" in out.stdout and "run with TPT_GPU=1" in out.stdout


def test_tpt_gpu_without_cuda_still_skips(tmp_path: Path) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the gpu test runs here")
    out = run_pytest(tmp_path, {**os.environ, "TPT_GPU": "1"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed, 1 skipped" in out.stdout and "torch sees no CUDA device" in out.stdout
