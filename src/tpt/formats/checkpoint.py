"""The checkpoint layout that crosses train -> eval: RUN_DIR/checkpoints/tokens-XXXXXXXXXXXX/.

Each checkpoint is a Hugging Face model directory plus `tpt_checkpoint.json` (tokens_seen, step,
rows_consumed, ..., and bos_id: the data's BOS convention, which `tpt eval` follows), written last, so
that a directory holding it is a complete checkpoint. `tpt train` writes it (train/checkpoint.py);
`tpt eval` reads it (evaluate/models.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TypedDict

from tpt.core.errors import InputError

CHECKPOINTS = "checkpoints"
"""The directory of a RUN_DIR that holds the checkpoints."""
STATE_FILE = "tpt_checkpoint.json"
NAME = re.compile(r"^tokens-(\d{12})$")
"""A checkpoint directory's name: the tokens seen, 12 digits."""


class CheckpointState(TypedDict, total=False):
    """The keys of tpt_checkpoint.json that readers use (train writes more: fingerprint, sizes, ...)."""

    format: str
    stage: str
    tokens_seen: int
    step: int
    rows_consumed: int
    bos_id: int | None
    """The data's BOS convention (pack/bos.py): the id every prompt starts with, or null for none."""


def checkpoint_name(tokens_seen: int) -> str:
    return f"tokens-{tokens_seen:012d}"


def tokens_in_name(name: str) -> int | None:
    """The tokens seen that a checkpoint directory's name says, or None for another name."""
    m = NAME.match(name)
    return int(m.group(1)) if m else None


def read_state(ckpt: Path) -> CheckpointState | None:
    """A checkpoint's tpt_checkpoint.json, or None when it has none (a model not made by tpt train)."""
    path = Path(ckpt) / STATE_FILE
    if not path.is_file():
        return None
    try:
        state: CheckpointState = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc})") from None
    return state if isinstance(state, dict) else None
