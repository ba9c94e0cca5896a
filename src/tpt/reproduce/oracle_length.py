"""How many thinking tokens the unbudgeted oracle writes for a pool: the base of `--budget-arms`' budget.

The procedural teacher at error rate 0 is a pure function of the document, so the count is exact before any
`tpt augment` runs (tests/reproduce/test_budget_arms.py checks it against a real run's completion_tokens).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from tpt.core.jsontypes import JSONObject


def oracle_thinking(record: JSONObject) -> str:
    """The thinking the procedural teacher writes for this pool record (error rate 0, no misconception)."""
    from tpt.reproduce import knowledge
    from tpt.reproduce.problems import Problem
    from tpt.reproduce.teacher import think

    if record.get("world") == knowledge.WORLD:
        return knowledge.think(knowledge.Entity.from_dict(record["entity"]))
    # At error rate 0 the random draw never changes a step: the trajectory depends on the problem alone.
    return think(
        Problem.from_dict(record["problem"]), stated_answer=None, error_rate=0.0, rng=random.Random(0)
    )


def oracle_tokens(corpus: Path) -> int:
    """Thinking tokens (words, the procedural teacher's unit) the unbudgeted oracle writes for the corpus."""
    total = 0
    with corpus.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                total += len(oracle_thinking(json.loads(line)).split())
    return total


def budget(corpus: Path, fraction: float) -> int:
    return max(1, int(fraction * oracle_tokens(corpus)))
