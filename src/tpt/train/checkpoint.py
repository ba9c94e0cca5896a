"""Checkpoints in RUN_DIR/checkpoints/tokens-XXXXXXXXXXXX/: a Hugging Face model directory + resume state.

Each one holds the model (safetensors, fp32 so resuming is exact), its config, the tokenizer,
`tpt_checkpoint.json` (tokens seen, step, rows consumed, ...) and `trainer_state.pt` (optimizer and RNG
state). A checkpoint is written into a temporary directory and renamed into place, so a directory
with a `tpt_checkpoint.json` is always complete, even after `kill -9`.
"""

from __future__ import annotations

import os
import random
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tpt.core.artifacts import read_json, write_json
from tpt.core.errors import ArtifactError
from tpt.core.jsontypes import JSONObject
from tpt.formats.checkpoint import CHECKPOINTS, STATE_FILE, checkpoint_name, tokens_in_name
from tpt.train.dist import DistContext, barrier, unwrap

TRAINER_FILE = "trainer_state.pt"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints of a run, by tokens seen (an interrupted write leaves only a hidden tmp dir)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if tokens_in_name(p.name) is not None and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: tokens_in_name(p.name) or 0)


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def _rng_state() -> dict[str, object]:
    import numpy as np
    import torch

    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [name, keys.tolist(), pos, has_gauss, cached],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    import numpy as np
    import torch

    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    random.setstate(tuple(x if not isinstance(x, list) else tuple(x) for x in state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    run_dir: Path,
    *,
    model: Any,
    optimizer: Any,
    tokenizer: Any,
    info: Mapping[str, object],
    ctx: DistContext,
    fsdp: bool = False,
) -> Path:
    """Write checkpoints/tokens-<info['tokens_seen']>/ atomically; every rank calls it, rank 0 writes."""
    import torch

    model_state = optim_state = None
    if fsdp:  # every rank takes part in gathering the full (unsharded) state onto rank 0's CPU
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            get_model_state_dict,
            get_optimizer_state_dict,
        )

        opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
        model_state = get_model_state_dict(model, options=opts)
        if getattr(unwrap(model).config, "tie_word_embeddings", False):
            model_state.pop("lm_head.weight", None)  # tied to the input embeddings; saved once
        optim_state = get_optimizer_state_dict(model, optimizer, options=opts)
    final = Path(run_dir) / CHECKPOINTS / checkpoint_name(int(info["tokens_seen"]))
    if ctx.is_main:
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        unwrap(model).save_pretrained(tmp, state_dict=model_state, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        torch.save(
            {"optimizer": optim_state if fsdp else optimizer.state_dict(), "rng": _rng_state()},
            tmp / TRAINER_FILE,
        )
        write_json(tmp / STATE_FILE, info)  # written last: its presence marks a complete checkpoint
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    barrier(ctx)
    return final


def read_checkpoint_info(ckpt: Path) -> JSONObject:
    info = read_json(Path(ckpt) / STATE_FILE)
    for key in ("tokens_seen", "step", "rows_consumed"):
        if key not in info:
            raise ArtifactError(f"{ckpt}/{STATE_FILE} lacks {key!r}; it was not written by this tpt")
    return info


def restore_trainer_state(ckpt: Path, *, model: Any, optimizer: Any, fsdp: bool = False) -> None:
    """Load the optimizer and RNG state saved beside a checkpoint's weights (weights load separately)."""
    import torch

    path = Path(ckpt) / TRAINER_FILE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing; the checkpoint cannot be resumed exactly") from None
    if fsdp:
        from torch.distributed.checkpoint.state_dict import (
            StateDictOptions,
            set_optimizer_state_dict,
        )

        set_optimizer_state_dict(
            model,
            optimizer,
            optim_state_dict=state["optimizer"],
            options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True),
        )
    else:
        optimizer.load_state_dict(state["optimizer"])
    _set_rng_state(state["rng"])
