"""The `gpu` marker: a test that needs a CUDA GPU runs only with TPT_GPU=1 on a machine where torch sees one.

Without TPT_GPU=1 such tests are skipped without importing torch, so collection stays light on CPU machines.
"""

from __future__ import annotations

import os

import pytest


def gpu_skip_reason() -> str | None:
    """Why the gpu tests cannot run here, or None when they can."""
    if os.environ.get("TPT_GPU") != "1":
        return "needs a CUDA GPU: run with TPT_GPU=1 on a machine with one"
    import torch

    if not torch.cuda.is_available():
        return "TPT_GPU=1 but torch sees no CUDA device"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    reason = gpu_skip_reason() if gpu_items else None
    for item in gpu_items if reason else ():
        item.add_marker(pytest.mark.skip(reason=reason))
