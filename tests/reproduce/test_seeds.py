"""`tpt reproduce --world-seed/--test-seed`: they reach the corpus and the test set, and summary.json says
whether the run's seeds are fresh (outside the development seeds)."""

from __future__ import annotations

import argparse

from tpt.reproduce.cli import add_arguments, corpus_config
from tpt.reproduce.experiment import Layout, prepare
from tpt.reproduce.presets import DEVELOPMENT_SEEDS, get_scale
from tpt.reproduce.report import seed_record


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(["--output", "x", *argv])


def test_seed_options_reach_the_corpus_config() -> None:
    scale = get_scale("quick")
    default = corpus_config(_args(), scale)
    assert default.world_seed in DEVELOPMENT_SEEDS["world_seed"]
    assert default.test_seed in DEVELOPMENT_SEEDS["test_seed"]
    fresh = corpus_config(_args("--world-seed", "77", "--test-seed", "5"), scale)
    assert (fresh.world_seed, fresh.test_seed) == (77, 5)
    assert fresh.pool_documents == scale.pool_documents


def test_test_seed_changes_the_test_set_and_world_seed_the_pool(tmp_path) -> None:
    scale = get_scale("quick")

    def heldout(*argv: str, name: str) -> tuple[str, str]:
        layout = Layout(root=tmp_path / name)
        prepare(layout, scale, corpus_config(_args(*argv), scale))
        derived = {layout.heldout, layout.weak_teacher.parent / "heldout-exercises.jsonl"}
        pool = sorted(p for p in layout.root.rglob("*.jsonl") if p not in derived)
        assert pool
        return layout.heldout.read_text(), "".join(p.read_text() for p in pool)

    base_test, base_pool = heldout(name="a")
    same_test, same_pool = heldout(name="b")
    assert (base_test, base_pool) == (same_test, same_pool)
    new_test, pool_b = heldout("--test-seed", "9", name="c")
    assert new_test != base_test and pool_b == base_pool
    other_test, other_pool = heldout("--world-seed", "99", name="d")
    assert other_pool != base_pool


def test_summary_records_seeds_and_whether_they_are_fresh() -> None:
    dev = seed_record({"world_seed": 1234, "test_seed": 0})
    assert dev["fresh"] is False and dev["development"] == {"world_seed": [1234], "test_seed": [0]}
    assert seed_record({"world_seed": 4321, "test_seed": 3})["fresh"] is True
    assert seed_record({"world_seed": 1234, "test_seed": 3})["fresh"] is False


def test_summary_paths_are_relative_to_the_run_directory(tmp_path) -> None:
    import json

    from tpt.reproduce.report import write_outputs

    root = tmp_path / "run"
    root.mkdir()
    summary = {"runs": {"seed-0-raw": {"commands": [["tpt", "pack", str(root / "aug"), f"--out={root}/p"]]}},
               "testbed": {"tokenizer": str(root / "testbed" / "tokenizer"), "dir": str(root)},
               "other": "/elsewhere/file", "n": 3}  # fmt: skip
    write_outputs(root, summary, f"ran `tpt pack {root}/aug`\n")
    text = (root / "summary.json").read_text()
    assert str(tmp_path) not in text
    got = json.loads(text)
    assert got["runs"]["seed-0-raw"]["commands"] == [["tpt", "pack", "aug", "--out=p"]]
    assert got["testbed"] == {"tokenizer": "testbed/tokenizer", "dir": "."}
    assert got["other"] == "/elsewhere/file" and got["n"] == 3
    assert (root / "report.md").read_text() == "ran `tpt pack aug`\n"
