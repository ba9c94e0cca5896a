"""Arms `tpt-uniform` and `tpt-difficulty` (opt-in, `tpt reproduce --budget-arms`): the oracle's thinking
under one global thinking budget, spread uniformly or by difficulty (`tpt augment --thinking-budget B
--allocation uniform|difficulty`, augment/budget.py), judged at equal generated tokens (issue 28).

The budget B of a world is a fixed fraction (default 0.5) of the thinking tokens the unbudgeted oracle
writes for that world's pool, in the procedural teacher's own tokens (words): it is computed before any
arm trains, from the corpus alone (reproduce/oracle_length.py: the oracle at error rate 0 is a pure
function of the document), and written into the pre-registration with the contrast
`tpt-difficulty-vs-tpt-uniform`. Both arms' augment
runs plan their caps from the same B, so neither generates more than B; what each spent is read from its
augment summary (`thinking_budget.spent`) into the world's facts.
"""

from __future__ import annotations

import json
from pathlib import Path

from tpt.core.jsontypes import JSONObject
from tpt.reproduce.runner import Job, Step

BUDGET_ARMS = {"tpt-uniform": "uniform", "tpt-difficulty": "difficulty"}
"""arm -> `--allocation` of its augment run."""
CONTRAST = "tpt-difficulty-vs-tpt-uniform"


def records_dir(root: Path, arm: str) -> Path:
    return root / f"aug-{BUDGET_ARMS[arm]}"


def augment_job(world: str, root: Path, arm: str, tokens: int) -> Job:
    """`tpt augment` of the pool under the world's budget with this arm's allocation (once, for every seed)."""
    argv = ("augment", str(root / "corpus.jsonl"), "--output", str(records_dir(root, arm)), "--backend",
            "procedural", "--seed", "0", "--shard-size", "100000", "--no-progress", "--thinking-budget",
            str(tokens), "--allocation", BUDGET_ARMS[arm])  # fmt: skip
    return Job(name=augment_job_name(world, arm), steps=(Step(name="augment", argv=argv),))


def augment_job_name(world: str, arm: str) -> str:
    return f"{world}-augment-{BUDGET_ARMS[arm]}"


def spent(root: Path, arms: tuple[str, ...]) -> JSONObject:
    """{arm: {allocation, budget, planned_tokens, spent}} from each budget arm's augment summary.json."""
    out: JSONObject = {}
    for arm in arms:
        if arm not in BUDGET_ARMS:
            continue
        path = records_dir(root, arm) / "summary.json"
        if not path.is_file():
            continue
        tb = json.loads(path.read_text(encoding="utf-8")).get("thinking_budget") or {}
        out[arm] = {k: tb.get(k) for k in ("allocation", "budget", "planned_tokens", "spent")}
    return out
