"""`tpt compare` on hand-made eval files (rows and samples in `tpt eval`'s format) with known answers: fast,
no training. The real-run tests are test_compare.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tpt.cli import main

CONFIG = {"engine": "hf", "dtype": "float32", "batch_size": 32, "max_new_tokens": 8, "temperature": 0.0,
          "top_p": 1.0, "samples": 1, "seed": 0, "limit": None, "num_available": 10,
          "task": {"prompt": "{question}", "metrics": {"accuracy": "last_number"}, "data": "/data/t.jsonl"}}  # fmt: skip


def write_eval(path: Path, runs: dict[str, tuple[tuple[int, ...], tuple[float, ...]]], n: int = 10) -> Path:
    """A results file and its samples: per model, accuracies at token counts (the first round(acc * n)
    items right)."""
    rows, samples = [], []
    for model, (tokens, accs) in runs.items():
        for step, (t, acc) in enumerate(zip(tokens, accs, strict=True), start=1):
            fp = f"{model}-{t}"
            config = {**CONFIG, "step": step, "fingerprint": fp}
            ckpt = f"tokens-{t:012d}"
            rows.append({"model": model, "checkpoint": ckpt, "tokens_seen": t, "task": "t", "metric": "accuracy",
                         "value": acc, "n": n, "config": config})  # fmt: skip
            for i in range(n):
                samples.append({"model": model, "checkpoint": ckpt, "tokens_seen": t, "fingerprint": fp, "task": "t",
                                "id": f"i{i}", "sample": 0, "correct": {"accuracy": i < round(acc * n)}})  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path.with_name(path.stem + ".samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    return path


def run_compare(tmp_path: Path, raw: dict, tpt: dict) -> dict:
    a, b = write_eval(tmp_path / "raw.jsonl", raw), write_eval(tmp_path / "tpt.jsonl", tpt)
    code = main(["compare", "--arm", f"raw={a}", "--arm", f"tpt={b}", "--baseline", "raw", "--output",
                 str(tmp_path / "o"), "--no-plots", "--bootstrap", "200"])  # fmt: skip
    assert code == 0
    return json.loads((tmp_path / "o" / "compare.json").read_text())["tasks"]["t"]


TOK = (100_000, 1_000_000, 10_000_000)


def test_an_arm_that_never_reaches_the_target_gets_its_shortfall(tmp_path: Path) -> None:
    task = run_compare(tmp_path, {"r0": (TOK, (0.1, 0.3, 0.5))}, {"t0": (TOK, (0.1, 0.2, 0.3))})
    c = task["contrasts"]["tpt-vs-raw"]
    assert c["target_accuracy"] == pytest.approx(0.5) and c["reached_target"] == {"#1": False}
    assert c["factor"]["value"] == pytest.approx(0.1)  # raw reaches 0.3 at 1e6; tpt spent 1e7
    assert c["verdict"] == "loss" and "one seed" in c["factor"]["method"]
    assert c["accuracy_difference"]["value"] == pytest.approx(-0.2) and c["tokens"] == 10_000_000


def test_a_plateau_counts_from_its_first_point(tmp_path: Path) -> None:
    task = run_compare(tmp_path, {"r0": (TOK, (0.1, 0.2, 0.3))}, {"t0": (TOK, (0.1, 0.3, 0.3))})
    assert task["contrasts"]["tpt-vs-raw"]["factor"]["value"] == pytest.approx(10.0)


def test_positive_control_an_arm_shifted_by_two_in_tokens(tmp_path: Path) -> None:
    grid = tuple(1000 * 2**k for k in range(1, 8))
    accs = ((0.0, 0.1, 0.2, 0.3, 0.5, 0.6, 0.8), (0.0, 0.0, 0.2, 0.4, 0.5, 0.7, 0.8))
    raw = {f"r{s}": (grid, a) for s, a in enumerate(accs)}
    tpt = {f"t{s}": (tuple(t // 2 for t in grid), a) for s, a in enumerate(accs)}
    task = run_compare(tmp_path, raw, tpt)
    f = task["contrasts"]["tpt-vs-raw"]["factor"]
    assert f["value"] == pytest.approx(2.0) and f["ci"] == [pytest.approx(2.0), pytest.approx(2.0)]
    assert f["n_seeds"] == 2 and "paired by id (2)" in f["method"]  # '#1' with '#1': by position
    assert task["common_tokens"] == list(grid[:-1]) and task["largest_common_tokens"] == grid[-2]


def test_ties_identical_arms(tmp_path: Path) -> None:
    runs = {"r0": (TOK, (0.1, 0.3, 0.5)), "r1": (TOK, (0.2, 0.2, 0.6))}
    task = run_compare(tmp_path, runs, {m.replace("r", "t"): v for m, v in runs.items()})
    c = task["contrasts"]["tpt-vs-raw"]
    assert c["factor"]["value"] == pytest.approx(1.0) and c["verdict"] == "no measurable effect"
    assert c["accuracy_difference"]["value"] == 0.0 and c["difference_verdict"] == "no measurable effect"
    md = (tmp_path / "o" / "compare.md").read_text()
    assert "t, tpt vs raw: **no measurable effect**" in md and "#1" in md
