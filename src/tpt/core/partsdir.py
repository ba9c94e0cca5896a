"""A directory of per-unit commits bound to the plan that made them (validate's and pack's `parts/`).

`bind(directory, plan)` keeps the directory when its `plan.json` is this plan, and otherwise empties it and
writes this plan: commits made under another config or other inputs are never reused.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tpt.core.artifacts import read_json, write_json
from tpt.core.jsontypes import JSONObject

PLAN = "plan.json"


def bind(directory: Path, plan: JSONObject) -> None:
    plan = json.loads(json.dumps(plan))  # as read back: tuples are lists
    if (directory / PLAN).is_file():
        try:
            same = read_json(directory / PLAN) == plan
        except (OSError, ValueError):
            same = False
        if not same:  # another config or other inputs: nothing here is reusable
            shutil.rmtree(directory)
    if not (directory / PLAN).is_file():
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.iterdir():
            stale.unlink()
        write_json(directory / PLAN, plan)
