"""One world of `tpt reproduce` as `tpt` jobs, and its per-item results read back.

Every world (knowledge.py, arithmetic.py) writes, under `worlds/NAME/`, a pool corpus (`corpus.jsonl`),
its test items (`test.jsonl`, each with a `stratum`) and the `tpt eval` task file (`tasks.json`). Then the
same jobs run in every world:

- `NAME-augment`: `tpt augment corpus.jsonl --backend procedural` once: the oracle's thinking for every
  pool document, the same trajectories for every arm and seed;
- `NAME-seed-S-ARM`: `tpt pack` of those records (raw: `--mode raw`, the documents alone; tpt: `--mode
  tpt`; tpt-shuffled: `--control shuffled --control-seed S`, a derangement within length buckets;
  tpt-filler: `--control filler`, content-free thinking of each trajectory's token count), then `tpt
  train` for the world's budget (thinking tokens counted in it) and `tpt eval` at every checkpoint.

`per_item` reads every run's per-item correctness back into one JSON object (summary.json's `per_item`):
everything an accuracy, a difference or a factor is computed from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tpt.core.errors import ArtifactError
from tpt.core.jsontypes import JSONObject
from tpt.reproduce.budget_arms import BUDGET_ARMS
from tpt.reproduce.budget_arms import augment_job as budget_augment_job
from tpt.reproduce.budget_arms import augment_job_name as budget_augment_name
from tpt.reproduce.budget_arms import records_dir as budget_records
from tpt.reproduce.presets import ARMS, WorldScale
from tpt.reproduce.runner import Job, Step


@dataclass(frozen=True, kw_only=True, slots=True)
class WorldPlan:
    """What a world's `prepare` wrote and what its analysis needs."""

    name: str
    root: Path
    tasks: tuple[str, ...]
    """Its `tpt eval` tasks, the primary endpoint first."""
    statistic: str
    """The primary contrasts' statistic: "difference" (of accuracy at the budget) or "factor"."""
    facts: JSONObject
    think_endpoint: str
    """Where the think task's prompt places `<think>`, in words (the report says it)."""
    arms: tuple[str, ...] = ARMS
    llm_max_thinking_tokens: int = 160
    """Arm `tpt-llm` (opt-in, `--llm-teacher`): the embedded SmolLM2's thinking cap per document."""
    thinking_budget: int | None = None
    """Arms tpt-uniform/tpt-difficulty (opt-in, `--budget-arms`): the world's global thinking budget."""


def arm_dir(root: Path, seed: int, arm: str) -> Path:
    return root / "runs" / f"seed-{seed}" / arm


def jobs(
    plan: WorldPlan, scale: WorldScale, *, seeds: tuple[int, ...], tokenizer: Path, eval_batch: int
) -> list[Job]:
    """The world's jobs in run order: the augment job, then each seed's arms."""
    r, name = plan.root, plan.name
    aug = r / "aug"
    augment = ("augment", str(r / "corpus.jsonl"), "--output", str(aug), "--backend", "procedural", "--seed", "0",
               "--shard-size", "100000", "--no-progress")  # fmt: skip
    out = [Job(name=f"{name}-augment", steps=(Step(name="augment", argv=augment),))]
    if "tpt-llm" in plan.arms:
        out.insert(0, llm_augment_job(plan))
    for arm in plan.arms:
        if arm in BUDGET_ARMS and plan.thinking_budget is not None:
            out.append(budget_augment_job(name, r, arm, plan.thinking_budget))
    for seed in seeds:
        for arm in plan.arms:
            d = arm_dir(r, seed, arm)
            records = (
                r / "aug-llm" if arm == "tpt-llm" else budget_records(r, arm) if arm in BUDGET_ARMS else aug
            )
            pack = ["pack", str(records), "--output", str(d / "pack"), "--tokenizer", str(tokenizer), "--seq-len",
                    str(scale.seq_len), "--mode", "raw" if arm == "raw" else "tpt", "--seed", str(seed),
                    "--paper-faithful"]  # fmt: skip
            if arm == "tpt-shuffled":
                pack += ["--control", "shuffled", "--control-seed", str(seed)]
            elif arm == "tpt-filler":
                pack += ["--control", "filler"]
            train = ["train", str(d / "pack"), "--output", str(d / "train"), "--tokens", str(scale.tokens_per_arm),
                     "--model-size", scale.model_size, "--preset", "testbed", "--batch-tokens", str(scale.batch_tokens),
                     "--seed", str(seed), "--save-at", ",".join(map(str, scale.checkpoints)), "--threads", "1",
                     "--log-every", "1"]  # fmt: skip
            ev = ["eval", str(d / "train"), "--task-file", str(r / "tasks.json"), "--output", str(d / "eval.jsonl"),
                  "--batch-size", str(eval_batch), "--threads", "1", "--device", "cpu"]  # fmt: skip
            steps = (Step(name="pack", argv=tuple(pack)), Step(name="train", argv=tuple(train)),
                     Step(name="eval", argv=tuple(ev)))  # fmt: skip
            after = (f"{name}-augment-llm" if arm == "tpt-llm" else budget_augment_name(name, arm)
                     if arm in BUDGET_ARMS else f"{name}-augment")  # fmt: skip
            out.append(Job(name=f"{name}-seed-{seed}-{arm}", steps=steps, after=(after,)))
    return out


def llm_augment_job(plan: WorldPlan) -> Job:
    """The embedded SmolLM2-135M-Instruct (`tpt augment`'s default backend and teacher, the paper's prompt
    and decoding) writing one trajectory per pool document, from the text alone, once for every seed."""
    argv = ("augment", str(plan.root / "corpus.jsonl"), "--output", str(plan.root / "aug-llm"),
            "--max-thinking-tokens", str(plan.llm_max_thinking_tokens), "--batch-size", "64", "--seed", "0",
            "--shard-size", "100000", "--no-progress")  # fmt: skip
    return Job(name=f"{plan.name}-augment-llm", steps=(Step(name="augment", argv=argv),))


def write_tasks(root: Path, tasks: list[JSONObject]) -> JSONObject:
    """tasks.json (data paths absolute, as `tpt eval` reads them); returns the file's content."""
    from tpt.core.artifacts import write_json

    doc: JSONObject = {"tasks": [{**t, "data": str(root / "test.jsonl")} for t in tasks]}
    write_json(root / "tasks.json", doc)
    return doc


def read_jsonl(path: Path) -> list[JSONObject]:
    if not path.is_file():
        raise ArtifactError(f"{path} is missing; re-run `tpt reproduce` to finish the runs")
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def per_item(plan: WorldPlan, seeds: tuple[int, ...]) -> JSONObject:
    """{items, strata, runs: {arm: {seed: {task: {tokens, correct}}}}}, `correct[k]` a string of 0/1 per item
    (in `items` order) at checkpoint `tokens[k]`, read from each run's `eval.samples.jsonl`."""
    order = [str(x["id"]) for x in read_jsonl(plan.root / "test.jsonl")]
    strata = [str(x["stratum"]) for x in read_jsonl(plan.root / "test.jsonl")]
    runs: JSONObject = {}
    for arm in plan.arms:
        for seed in seeds:
            path = arm_dir(plan.root, seed, arm) / "eval.samples.jsonl"
            hits: dict[str, dict[int, dict[str, int]]] = {}
            for s in read_jsonl(path):
                if s.get("task") in plan.tasks and s.get("tokens_seen"):
                    row = hits.setdefault(s["task"], {}).setdefault(int(s["tokens_seen"]), {})
                    row[str(s["id"])] = int(bool(s["correct"].get("accuracy")))
            by_task = {}
            for task in plan.tasks:
                by = hits.get(task, {})
                bad = [t for t, row in by.items() if set(row) != set(order)]
                if not by or bad:
                    raise ArtifactError(f"{path}: task {task} lacks test items; re-run `tpt reproduce`")
                by_task[task] = {"tokens": sorted(by),
                                 "correct": ["".join(str(by[t][i]) for i in order) for t in sorted(by)]}  # fmt: skip
            runs.setdefault(arm, {})[str(seed)] = by_task
    return {"items": order, "strata": strata, "runs": runs}
