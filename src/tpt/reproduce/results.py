"""Read the finished Part 1 runs back: accuracy curves per arm and mode, the factors, the teachers' scores."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from statistics import mean
from typing import Any

from tpt.artifacts import read_json
from tpt.errors import ArtifactError
from tpt.reproduce.efficiency import Curve, data_efficiency, mean_factor
from tpt.reproduce.experiment import MODES, Layout
from tpt.reproduce.presets import Scale

TASK_MODE = {"testbed-direct": "direct", "testbed-think": "think"}
LAST_NUMBER = re.compile(r"-?\d+")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise ArtifactError(f"{path} is missing; re-run `tpt reproduce` to finish the runs")
    return [
        json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()
    ]


def arm_curves(rows: list[dict[str, Any]]) -> dict[str, Curve]:
    """mode -> accuracy curve over checkpoints, from `tpt eval` result rows (the last row of a point wins)."""
    points: dict[str, dict[int, float]] = defaultdict(dict)
    for row in rows:
        mode = TASK_MODE.get(row.get("task"))
        if mode and row.get("metric") == "accuracy" and row.get("tokens_seen"):
            points[mode][int(row["tokens_seen"])] = float(row["value"])
    return {
        m: Curve(tokens=tuple(sorted(p)), accuracy=tuple(p[t] for t in sorted(p)))
        for m, p in points.items()
    }


def accuracy_by_level(
    samples_path: Path, heldout: dict[str, dict[str, Any]], tokens_seen: int
) -> dict[str, dict[str, float]]:
    """mode -> level -> accuracy at one checkpoint, from the eval's per-sample file."""
    hits: dict[str, dict[int, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for s in read_jsonl(samples_path):
        mode = TASK_MODE.get(s.get("task"))
        if mode and s.get("tokens_seen") == tokens_seen and s.get("id") in heldout:
            hits[mode][heldout[s["id"]]["level"]].append(bool(s["correct"].get("accuracy")))
    return {m: {f"level-{lv}": mean(v) for lv, v in sorted(by.items())} for m, by in hits.items()}


def best_mode(curves: dict[str, Curve]) -> str:
    """The mode with the higher final accuracy (ties: direct)."""
    return max(
        (m for m in MODES if m in curves), key=lambda m: (curves[m].accuracy[-1], m == "direct")
    )


def collect_part1(layout: Layout, scale: Scale) -> dict[str, Any]:
    """Curves, best modes, per-seed factors (final and earlier stop), extra arms, teacher accuracy."""
    heldout = {r["id"]: r for r in read_jsonl(layout.heldout)}
    arms: dict[str, dict[int, dict[str, Curve]]] = defaultdict(dict)
    by_level: dict[str, dict[int, Any]] = defaultdict(dict)
    for seed in scale.seeds:
        names = ["raw", "tpt"] + (
            ["raw-constrained", "tpt-weak"] if seed in scale.extra_arm_seeds else []
        )
        for arm in names:
            path = layout.eval_rows(seed, arm)
            arms[arm][seed] = curves = arm_curves(read_jsonl(path))
            if not curves:
                raise ArtifactError(
                    f"{path} holds no testbed accuracy rows; re-run `tpt reproduce`"
                )
            final = max(c.tokens[-1] for c in curves.values())
            by_level[arm][seed] = accuracy_by_level(
                path.with_name(path.stem + ".samples.jsonl"), heldout, final
            )
    # Each arm's best mode, chosen on its final accuracy averaged over seeds.
    modes = {}
    for arm, per_seed in arms.items():
        finals = {m: mean(c[m].accuracy[-1] for c in per_seed.values() if m in c) for m in MODES}
        modes[arm] = max(MODES, key=lambda m: (finals[m], m == "direct"))

    def factors(raw_arm: str, tpt_arm: str, seeds: tuple[int, ...]) -> dict[str, Any]:
        out: dict[str, Any] = {"per_seed": {}}
        finals, earlier = [], []
        for seed in seeds:
            raw, tpt = arms[raw_arm][seed][modes[raw_arm]], arms[tpt_arm][seed][modes[tpt_arm]]
            f = data_efficiency(raw, tpt)
            e = data_efficiency(raw, tpt, stop_tokens=scale.earlier_stop_tokens())
            finals.append(f)
            earlier.append(e)
            out["per_seed"][str(seed)] = {"final": f.as_dict(), "earlier_stop": e.as_dict()}
        out["mean"], out["mean_is_upper_bound"] = mean_factor(finals)
        out["mean_earlier_stop"], out["mean_earlier_stop_is_upper_bound"] = mean_factor(earlier)
        return out

    def final_acc(arm: str, seeds: tuple[int, ...]) -> float:
        return mean(arms[arm][s][modes[arm]].accuracy[-1] for s in seeds)

    result: dict[str, Any] = {
        "best_mode": modes,
        "curves": {arm: {str(s): {m: {"tokens": list(c.tokens), "accuracy": list(c.accuracy)} for m, c in cs.items()}
                         for s, cs in per_seed.items()} for arm, per_seed in arms.items()},
        "accuracy_by_level_final": {arm: {str(s): v for s, v in d.items()} for arm, d in by_level.items()},
        "main": factors("raw", "tpt", scale.seeds),
        "raw_final_accuracy": final_acc("raw", scale.seeds),
        "tpt_final_accuracy": final_acc("tpt", scale.seeds),
    }  # fmt: skip
    if scale.extra_arm_seeds:
        extra = scale.extra_arm_seeds
        result["data_constrained"] = {
            **factors("raw-constrained", "tpt", extra),
            "raw_constrained_final_accuracy": final_acc("raw-constrained", extra),
            "tpt_final_accuracy": final_acc("tpt", extra),
        }
        result["weak_teacher"] = {
            **factors("raw", "tpt-weak", extra),
            "student_accuracy": final_acc("tpt-weak", extra),
            "teacher_from_scratch": weak_teacher_accuracy(layout, heldout),
        }
    return result


def weak_teacher_accuracy(layout: Layout, heldout: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The weak teacher's own accuracy on the held-out problems, solved from scratch (its last number)."""
    records = [r for p in sorted((layout.weak_teacher / "shards").glob("*.jsonl"))
               if not p.name.endswith(".failures.jsonl") for r in read_jsonl(p)]  # fmt: skip
    if not records:
        raise ArtifactError(
            f"no records under {layout.weak_teacher}/shards; re-run `tpt reproduce`"
        )
    correct = [
        bool((m := LAST_NUMBER.findall(r["thinking"])) and m[-1] == heldout[r["id"]]["answer"])
        for r in records
    ]
    return {"accuracy": mean(correct), "n": len(correct)}


def pack_facts(layout: Layout, scale: Scale, seed: int, arm: str) -> dict[str, Any]:
    """Documents and tokens an arm's pack holds, and how many epochs its budget makes of them."""
    d = layout.arm(seed, arm) / "pack"
    try:
        stats, index = read_json(d / "stats.json"), read_json(d / "index.json")
    except ArtifactError:
        return {}
    total = int(index["num_rows"]) * int(index["seq_len"])
    return {
        "documents": stats.get("documents"),
        "document_tokens": stats.get("document_tokens"),
        "thinking_tokens": stats.get("thinking_tokens"),
        "template_tokens": stats.get("template_tokens"),
        "pad_tokens": stats.get("pad_tokens"),
        "row_tokens": total,
        "epochs": scale.tokens_per_arm / total if total else None,
    }
