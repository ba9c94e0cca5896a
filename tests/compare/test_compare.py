"""`tpt compare` on real tiny runs (two arms x two seeds, trained and scored on CPU) and on each bad input."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tpt.cli import main
from tpt.compare import estimator as est

pytestmark = pytest.mark.slow  # the session fixture trains four runs (~1 min)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").split("\n") if x.strip()]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def samples_of(results: Path) -> Path:
    return results.with_name(results.name.removesuffix(".jsonl") + ".samples.jsonl")


def rewrite(src: Path, dst: Path, row: Callable[[dict], dict | None] = lambda r: r,
            sample: Callable[[dict], dict | None] = lambda s: s) -> Path:  # fmt: skip
    """A copy of a results file and its samples, each record passed through `row` / `sample` (None drops it)."""
    write_jsonl(samples_of(dst), [x for s in read_jsonl(samples_of(src)) if (x := sample(s)) is not None])
    return write_jsonl(dst, [x for r in read_jsonl(src) if (x := row(r)) is not None])


def compare(*argv: str) -> int:
    return main(["compare", *map(str, argv)])


def error_of(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """Run a comparison that must fail: exit status 2 and one line, no traceback."""
    assert compare(*argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("tpt compare: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def tpt_dirs(root: Path) -> list[str]:
    return [str(root / "runs" / f"tpt-s{s}" / "train") for s in (0, 1)]


def base_args(root: Path, out: Path) -> list[str]:
    return ["--arm", f"raw={root / 'eval' / 'raw.jsonl'}", "--arm", "tpt=" + ",".join(tpt_dirs(root)),
            "--baseline", "raw", "--output", str(out), "--bootstrap", "300"]  # fmt: skip


def rows_curve(results: Path, model: str) -> list[tuple[float, float]]:
    rows = [r for r in read_jsonl(results) if r["model"] == model and r["metric"] == "accuracy"]
    return sorted((float(r["tokens_seen"]), r["value"]) for r in rows)


def nested_run(arm: str, seed: str, points: list[tuple[float, float]], n: int) -> est.SeedRun:
    """A run with exactly these accuracies (the first round(acc * n) items right)."""
    rows = tuple(tuple(i < round(a * n) for i in range(n)) for _, a in points)
    return est.SeedRun(arm, seed, tuple(t for t, _ in points), rows)


def test_two_arms_two_seeds_end_to_end(
    evaluated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Factor, accuracies, plots and verdicts from real runs; every number agrees with what `tpt eval`
    wrote in its rows (accuracy per checkpoint), read back independently here."""
    out = tmp_path / "cmp"
    assert compare(*base_args(evaluated, out)) == 0
    err = capsys.readouterr().err
    assert "[compare] sums, tpt vs raw: " in err
    report = json.loads((out / "compare.json").read_text())
    assert report["baseline"] == "raw" and list(report["tasks"]) == ["sums"]
    assert [(r["seed"], r["seed_from"]) for r in report["arms"]["tpt"]] == [
        ("0", "manifest"),
        ("1", "manifest"),
    ]
    assert [r["source"] for r in report["arms"]["tpt"]] == [
        str((evaluated / "runs" / f"tpt-s{s}" / "eval.jsonl").resolve()) for s in (0, 1)
    ]  # found beside each run directory
    task = report["tasks"]["sums"]
    assert task["n_items"] == 30 and task["metric"] == "accuracy"
    assert task["common_tokens"] == [1024, 2048, 4096, 8192] and task["largest_common_tokens"] == 8192

    curves = {("raw", s): rows_curve(evaluated / "eval" / "raw.jsonl", str(evaluated / "runs" / f"raw-s{s}" / "train"))
              for s in (0, 1)}  # fmt: skip
    for s in (0, 1):
        path = evaluated / "runs" / f"tpt-s{s}"
        curves[("tpt", s)] = rows_curve(path / "eval.jsonl", str(path / "train"))
    for arm in ("raw", "tpt"):
        curve = task["arms"][arm]["curve"]
        for s in (0, 1):
            assert curve["per_seed"][str(s)] == pytest.approx([a for _, a in curves[(arm, s)]])
        final = [curves[(arm, s)][-1][1] for s in (0, 1)]
        acc = task["arms"][arm]["accuracy_at_common"]
        assert acc["value"] == pytest.approx(sum(final) / 2) and acc["ci"][0] <= acc["value"] <= acc["ci"][1]

    c = task["contrasts"]["tpt-vs-raw"]
    target = sum(curves[("raw", s)][-1][1] for s in (0, 1)) / 2
    assert c["target_accuracy"] == pytest.approx(target)
    for s in (0, 1):
        expect = est.efficiency_factor(nested_run("raw", str(s), curves[("raw", s)], 30),
                                       nested_run("tpt", str(s), curves[("tpt", s)], 30), target)  # fmt: skip
        assert c["factor"]["per_seed"][str(s)] == pytest.approx(expect)
    f = c["factor"]
    assert f["n_seeds"] == 2 and f["n_items"] == 30 and f["ci"][0] <= f["value"] <= f["ci"][1]
    assert c["verdict"] in ("gain", "no measurable effect", "loss")
    assert c["verdict"] == est.verdict(est.Interval(value=f["value"], low=f["ci"][0], high=f["ci"][1],
                                                    confidence=0.95, n_seeds=2, n_items=30, method=""), 1.0)  # fmt: skip
    diff = c["accuracy_difference"]
    assert diff["value"] == pytest.approx(task["arms"]["tpt"]["accuracy_at_common"]["value"]
                                          - task["arms"]["raw"]["accuracy_at_common"]["value"])  # fmt: skip
    md = (out / "compare.md").read_text()
    assert f"sums, tpt vs raw: **{c['verdict']}**" in md and "![sums](sums.png)" in md
    assert (out / "sums.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_run_directories_with_results_elsewhere_and_a_one_seed_arm(
    evaluated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Run directories whose rows are in a --results file; an arm with one seed (paired with seed 0)."""
    raw_dirs = ",".join(str(evaluated / "runs" / f"raw-s{s}" / "train") for s in (0, 1))
    out = tmp_path / "cmp"
    code = compare("--arm", f"raw={raw_dirs}", "--arm", f"tpt={tpt_dirs(evaluated)[0]}",
                   "--results", evaluated / "eval" / "raw.jsonl", "--baseline", "raw", "--output", out,
                   "--bootstrap", "200", "--no-plots")  # fmt: skip
    assert code == 0, capsys.readouterr().err
    report = json.loads((out / "compare.json").read_text())
    factor = report["tasks"]["sums"]["contrasts"]["tpt-vs-raw"]["factor"]
    assert factor["n_seeds"] == 1 and "one seed" in factor["method"] and "left out: 1" in factor["method"]
    assert not (out / "sums.png").exists() and report["plots"] == {}


def test_python_entry_point_and_old_samples_without_fingerprints(evaluated: Path, tmp_path: Path) -> None:
    """run(CompareConfig) returns the summary; samples written before they carried the rows' fingerprint
    give the same numbers."""
    from tpt.compare.config import CompareConfig
    from tpt.compare.stage import run

    raw = evaluated / "eval" / "raw.jsonl"
    old = rewrite(
        raw,
        tmp_path / "old" / "raw.jsonl",
        sample=lambda s: {k: v for k, v in s.items() if k != "fingerprint"},
    )
    tpt = tuple(tpt_dirs(evaluated))
    a = run(CompareConfig(arms=(("raw", (str(raw),)), ("tpt", tpt)), baseline="raw", output=tmp_path / "a",
                          bootstrap=200, plots=False), log=None)  # fmt: skip
    b = run(CompareConfig(arms=(("raw", (str(old),)), ("tpt", tpt)), baseline="raw", output=tmp_path / "b",
                          bootstrap=200, plots=False), log=None)  # fmt: skip
    assert a.verdicts == b.verdicts and set(a.verdicts["sums"]) == {"tpt-vs-raw"}
    assert a.to_json()["tasks"] == b.to_json()["tasks"]
    assert a.files == (tmp_path / "a" / "compare.json", tmp_path / "a" / "compare.md")


def test_recipe_syntax_parses_with_the_real_parser(evaluated: Path, tmp_path: Path) -> None:
    from tpt.cli import build_parser
    from tpt.compare.cli import config_from_args

    args = build_parser("compare").parse_args(
        [
            "compare",
            "--arm",
            "raw=a.jsonl",
            "--arm",
            "tpt=b.jsonl,c.jsonl",
            "--baseline",
            "raw",
            "--output",
            "o",
        ]
    )
    config = config_from_args(args)
    assert (
        config.arms == (("raw", ("a.jsonl",)), ("tpt", ("b.jsonl", "c.jsonl"))) and config.baseline == "raw"
    )


# --- bad input: one line naming the runs, the field and why ---------------------------------------------


def test_different_tasks(evaluated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def rename(r: dict) -> dict:
        return {**r, "task": "other"}

    raw = rewrite(evaluated / "eval" / "raw.jsonl", tmp_path / "raw.jsonl", rename, rename)
    err = error_of(capsys, "--arm", f"raw={raw}", "--arm", "tpt=" + ",".join(tpt_dirs(evaluated)),
                   "--baseline", "raw", "--output", tmp_path / "o")  # fmt: skip
    assert "different tasks" in err and "raw/0" in err and "tpt/" in err and "other" in err and "sums" in err


def test_no_common_checkpoint(evaluated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def shift(r: dict) -> dict:
        return {**r, "tokens_seen": r["tokens_seen"] * 3}

    raw = rewrite(evaluated / "eval" / "raw.jsonl", tmp_path / "raw.jsonl", shift, shift)
    err = error_of(capsys, "--arm", f"raw={raw}", "--arm", "tpt=" + ",".join(tpt_dirs(evaluated)),
                   "--baseline", "raw", "--output", tmp_path / "o")  # fmt: skip
    assert "task sums" in err and "no checkpoint at a common token count" in err and "raw/0" in err


def test_different_eval_settings(evaluated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def longer(r: dict) -> dict:
        return {**r, "config": {**r["config"], "max_new_tokens": 64}}

    raw = rewrite(evaluated / "eval" / "raw.jsonl", tmp_path / "raw.jsonl", row=longer)
    args = ["--arm", f"raw={raw}", "--arm", "tpt=" + ",".join(tpt_dirs(evaluated)), "--baseline", "raw",
            "--output", tmp_path / "o", "--no-plots", "--bootstrap", "100"]  # fmt: skip
    err = error_of(capsys, *args)
    assert (
        "different eval settings" in err
        and "max_new_tokens: 64 vs 3" in err
        and "raw/0" in err
        and "tpt/0" in err
    )
    assert compare(*args, "--ignore-setting", "max_new_tokens") == 0  # a difference the user vouches for


def test_one_run_scored_with_two_settings(
    evaluated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = evaluated / "eval" / "raw.jsonl"
    rows = read_jsonl(src)
    again = [
        {**r, "config": {**r["config"], "limit": 5, "fingerprint": "x" + r["config"]["fingerprint"]}}
        for r in rows
    ]
    shutil.copy(samples_of(src), samples_of(tmp_path / "raw.jsonl"))
    write_jsonl(tmp_path / "raw.jsonl", rows + again)
    err = error_of(capsys, "--arm", f"raw={tmp_path / 'raw.jsonl'}", "--arm", "tpt=" + ",".join(tpt_dirs(evaluated)),
                   "--baseline", "raw", "--output", tmp_path / "o")  # fmt: skip
    assert "2 different eval settings" in err and "limit" in err and "raw-s0" in err


def test_different_items(evaluated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def other_item(s: dict) -> dict:
        return {**s, "id": "z0"} if s["id"] == "q0" else s

    raw = rewrite(evaluated / "eval" / "raw.jsonl", tmp_path / "raw.jsonl", sample=other_item)
    err = error_of(capsys, "--arm", f"raw={raw}", "--arm", "tpt=" + ",".join(tpt_dirs(evaluated)),
                   "--baseline", "raw", "--output", tmp_path / "o")  # fmt: skip
    assert "different items" in err and ("'q0'" in err or "'z0'" in err)


def test_incomplete_per_item_results(
    evaluated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = rewrite(evaluated / "eval" / "raw.jsonl", tmp_path / "raw.jsonl",
                  sample=lambda s: None if s["id"] == "q3" and s["tokens_seen"] == 2048 else s)  # fmt: skip
    err = error_of(capsys, "--arm", f"raw={raw}", "--arm", "tpt=" + ",".join(tpt_dirs(evaluated)),
                   "--baseline", "raw", "--output", tmp_path / "o")  # fmt: skip
    assert "tokens-000000002048" in err and "29 items" in err and "re-run the same `tpt eval`" in err


def test_missing_samples_file_and_run_without_results(
    evaluated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lone = tmp_path / "raw.jsonl"
    shutil.copy(evaluated / "eval" / "raw.jsonl", lone)
    err = error_of(capsys, "--arm", f"raw={lone}", "--arm", f"tpt={tpt_dirs(evaluated)[0]}",
                   "--baseline", "raw", "--output", tmp_path / "o")  # fmt: skip
    assert "raw.samples.jsonl are not beside it" in err
    raw_dir = evaluated / "runs" / "raw-s0" / "train"
    err = error_of(capsys, "--arm", f"raw={raw_dir}", "--arm", f"tpt={tpt_dirs(evaluated)[0]}",
                   "--baseline", "raw", "--output", tmp_path / "o")  # fmt: skip
    assert f"no `tpt eval` results for run {raw_dir}" in err and "tpt eval" in err


def test_not_eval_output_and_plain_models(
    evaluated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = write_jsonl(tmp_path / "corpus.jsonl", [{"id": "d1", "text": "hello"}])
    err = error_of(capsys, "--arm", f"raw={corpus}", "--arm", f"tpt={tpt_dirs(evaluated)[0]}",
                   "--baseline", "raw", "--output", tmp_path / "o")  # fmt: skip
    assert "record 1 is not a `tpt eval` result row" in err
    plain = rewrite(evaluated / "eval" / "raw.jsonl", tmp_path / "plain.jsonl",
                    row=lambda r: {**r, "tokens_seen": None, "checkpoint": None})  # fmt: skip
    err = error_of(capsys, "--arm", f"raw={plain}", "--arm", f"tpt={tpt_dirs(evaluated)[0]}",
                   "--baseline", "raw", "--output", tmp_path / "o")  # fmt: skip
    assert "has no tokens_seen" in err and "training-token axis" in err


def test_arms_that_cannot_be_formed(
    evaluated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = str(evaluated / "eval" / "raw.jsonl")
    tpt = tpt_dirs(evaluated)
    out = ["--output", str(tmp_path / "o")]
    assert "not one of the arms" in error_of(
        capsys, "--arm", f"raw={raw}", "--arm", f"tpt={tpt[0]}", "--baseline", "x", *out
    )
    assert "at least two arms" in error_of(capsys, "--arm", f"raw={raw}", "--baseline", "raw", *out)
    assert "given twice" in error_of(
        capsys, "--arm", f"raw={raw}", "--arm", f"raw={tpt[0]}", "--baseline", "raw", *out
    )
    assert "NAME=EVAL" in error_of(capsys, "--arm", raw, "--arm", f"tpt={tpt[0]}", "--baseline", "raw", *out)
    both = f"{tpt[1]},{evaluated / 'runs' / 'raw-s0' / 'train'}"
    err = error_of(
        capsys, "--arm", f"raw={raw}", "--arm", f"tpt={both}", "--results", raw, "--baseline", "raw", *out
    )
    assert "raw-s0/train is in two arms (raw and tpt)" in err
    err = error_of(capsys, "--arm", f"raw={raw}", "--arm", f"tpt={tpt[0]},{evaluated / 'runs' / 'tpt-s0' / 'eval.jsonl'}",
                   "--baseline", "raw", *out)  # fmt: skip
    assert "given twice" in err
    mixed = f"{tpt[0]},{evaluated / 'runs' / 'raw-s0' / 'train'}"
    err = error_of(
        capsys, "--arm", f"raw={tpt[1]}", "--arm", f"tpt={mixed}", "--results", raw, "--baseline", "raw", *out
    )
    assert "same training seed 0" in err
    err = error_of(
        capsys, "--arm", f"raw={raw}", "--arm", f"tpt={tpt[0]}", "--baseline", "raw", "--metric", "nope", *out
    )
    assert "no metric 'nope'" in err and "accuracy" in err


def test_levels_stratify_the_item_bootstrap(
    evaluated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    levels = write_jsonl(
        tmp_path / "levels.jsonl", [{"id": f"q{i}", "difficulty": "ab"[i % 2]} for i in range(30)]
    )
    args = base_args(evaluated, tmp_path / "o") + ["--no-plots", "--levels", str(levels)]
    err = error_of(capsys, *args)
    assert "has no field 'level' (pass --level-field)" in err
    assert compare(*args, "--level-field", "difficulty") == 0
    capsys.readouterr()
    task = json.loads((tmp_path / "o" / "compare.json").read_text())["tasks"]["sums"]
    assert task["strata"] == {"a": 15, "b": 15}
    assert "2 strata" in task["contrasts"]["tpt-vs-raw"]["factor"]["method"]
    short = write_jsonl(tmp_path / "short.jsonl", [{"id": f"q{i}", "level": "a"} for i in range(29)])
    err = error_of(capsys, *base_args(evaluated, tmp_path / "o"), "--levels", str(short))
    assert "task sums: item 'q29' has no level" in err


def test_several_samples_per_item_and_a_half_written_last_line(
    evaluated: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With `tpt eval --samples 2`, an item scores the share of its samples right: here every second sample
    is wrong, so every accuracy halves. A half line left at the end by a kill is skipped; one in the middle
    is an error naming its line."""
    src = evaluated / "eval" / "raw.jsonl"
    doubled = []
    for s in read_jsonl(samples_of(src)):
        doubled += [s, {**s, "sample": 1, "correct": {"accuracy": False}}]
    dst = tmp_path / "raw.jsonl"
    shutil.copy(src, dst)
    text = "".join(json.dumps(s) + "\n" for s in doubled)
    samples_of(dst).write_text(text + '{"model": "cut', encoding="utf-8")
    args = ["--arm", f"raw={dst}", "--arm", "tpt=" + ",".join(tpt_dirs(evaluated)), "--baseline", "raw",
            "--output", tmp_path / "o", "--no-plots", "--bootstrap", "100"]  # fmt: skip
    assert compare(*args) == 0
    capsys.readouterr()
    per_seed = json.loads((tmp_path / "o" / "compare.json").read_text())["tasks"]["sums"]["arms"]["raw"][
        "curve"
    ]["per_seed"]
    for s in (0, 1):
        rows = rows_curve(src, str(evaluated / "runs" / f"raw-s{s}" / "train"))
        assert per_seed[str(s)] == pytest.approx([a / 2 for _, a in rows])
    lines = text.split("\n")
    samples_of(dst).write_text("\n".join(lines[:5] + ['{"model": "cut'] + lines[5:]), encoding="utf-8")
    err = error_of(capsys, *args)
    assert "raw.samples.jsonl:6: not valid JSON" in err
