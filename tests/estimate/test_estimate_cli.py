"""`tpt estimate` end to end: a random sample through the real augment stage (openai backend, local stub)."""

import json

from tpt.cli import main
from tpt.estimate.sample import draw_sample


def corpus(tmp_path, n=50):
    path = tmp_path / "corpus.jsonl"
    path.write_text(
        "".join(json.dumps({"id": i, "text": f"document {i} " + "word " * (i % 11)}) + "\n" for i in range(n))
    )
    return path


def test_the_sample_is_uniform_deterministic_and_in_input_order(tmp_path):
    src = corpus(tmp_path, 200)
    total, n = draw_sample([str(src)], 20, seed=7, out=tmp_path / "a.jsonl")
    draw_sample([str(src)], 20, seed=7, out=tmp_path / "b.jsonl")
    ids = [json.loads(x)["id"] for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert (total, n) == (200, 20) and (tmp_path / "a.jsonl").read_text() == (
        tmp_path / "b.jsonl"
    ).read_text()
    assert ids == sorted(ids) and len(set(ids)) == 20 and max(ids) > 100  # not just the head of the file
    assert draw_sample([str(src)], 500, seed=0, out=tmp_path / "all.jsonl") == (200, 200)


def test_estimate_runs_the_sample_and_projects(tmp_path, capsys):
    from tpt.testing.openai_stub import StubConfig, StubServer

    src = corpus(tmp_path)
    with StubServer(StubConfig(latency_ms=5, words=30)) as stub:
        code = main(
            [
                "estimate",
                str(src),
                "--backend",
                "openai",
                "--base-url",
                stub.base_url,
                "--model",
                "stub",
                "--sample",
                "10",
                "--gpu-throughput",
                "1500",
                "--gpus",
                "4",
                "--max-thinking-tokens",
                "64",
                "--target-training-tokens",
                "1e6",
                "-o",
                str(tmp_path / "est"),
                "--no-progress",
            ]
        )
    assert code == 0
    out = capsys.readouterr().out
    assert "estimate from a random sample of 10 of 50 items (backend openai)" in out
    est = json.loads((tmp_path / "est" / "estimate.json").read_text())
    assert (tmp_path / "est" / "augmented" / "summary.json").exists() and (
        tmp_path / "est" / "sample.jsonl"
    ).exists()
    sample, p = est["sample"], est["projection"]
    assert sample["items"] == 10 and sample["records"] == 10
    assert p["documents"] == 50 and p["mean_thinking_tokens"] == 30  # the stub writes 30 words = 30 tokens
    assert p["teacher_generated_tokens"] == 1500 and p["gpu_hours"] == 1500 / 1500 / 3600
    assert "GPU-hours" in out and "A100-hours" in out


def test_estimate_refuses_limit(tmp_path, capsys):
    assert main(["estimate", str(corpus(tmp_path)), "--limit", "3"]) == 2
    assert "use --sample N, not --limit" in capsys.readouterr().err


def test_estimate_refuses_an_output_that_holds_a_sample_run(tmp_path, capsys):
    (tmp_path / "est" / "augmented").mkdir(parents=True)
    assert main(["estimate", str(corpus(tmp_path)), "-o", str(tmp_path / "est")]) == 2
    assert "already holds a sample run" in capsys.readouterr().err


def test_the_estimate_options_default_to_estimate_config():
    import argparse

    from tpt.augment import cli as augment_cli
    from tpt.core.configs import drift
    from tpt.estimate import cli
    from tpt.estimate.stage import EstimateConfig

    parser, augment = argparse.ArgumentParser(), argparse.ArgumentParser()
    cli.add_arguments(parser)
    augment_cli.add_arguments(augment)  # they fill EstimateConfig.augment, an AugmentConfig
    teacher = {a.dest for a in augment._actions} - {"output"}
    assert drift(parser, EstimateConfig, cli_only=teacher) == []
    assert not next(a for a in parser._actions if a.dest == "output").required


def test_estimate_from_python(tmp_path):
    """The typed API: an AugmentConfig for the teacher, the sample and the projection in an EstimateSummary."""
    from tpt.augment.config import AugmentConfig
    from tpt.estimate.stage import EstimateConfig, run
    from tpt.testing.openai_stub import StubConfig, StubServer

    src = corpus(tmp_path, 20)
    with StubServer(StubConfig(latency_ms=1, words=12)) as stub:
        teacher = AugmentConfig(
            inputs=[str(src)],
            output=tmp_path / "unused",
            backend="openai",
            backend_options={"base_url": stub.base_url, "model": "stub"},
            progress=False,
        )
        summary = run(EstimateConfig(augment=teacher, sample=5, sample_seed=3, output=tmp_path / "est"))
    assert (summary.corpus_items, summary.sample_items, summary.sample_seed) == (20, 5, 3)
    assert summary.measured["records"] == 5 and summary.measured["wall_seconds"] > 0
    assert summary.projection["documents"] == 20 and summary.projection["mean_thinking_tokens"] == 12
    assert summary.sample_run.records == 5 and not (tmp_path / "unused").exists()
    assert json.loads((tmp_path / "est" / "estimate.json").read_text()) == summary.to_json()


def test_estimate_projects_the_cost_under_a_thinking_budget(tmp_path, capsys):
    """A budget for the whole corpus (500 tokens for 50 items) runs the sample at the same mean per
    document (10), so the projection is that of the budgeted run: 500 generated tokens, not 30 x 50."""
    from tpt.testing.openai_stub import StubConfig, StubServer

    src = corpus(tmp_path)
    argv = ["estimate", str(src), "--backend", "openai", "--model", "stub", "--sample", "10",
            "--thinking-budget", "500", "-o", str(tmp_path / "est"), "--no-progress"]  # fmt: skip
    with StubServer(StubConfig(latency_ms=1, words=30)) as stub:
        assert main([*argv, "--base-url", stub.base_url]) == 0
    est = json.loads((tmp_path / "est" / "estimate.json").read_text())
    budget = json.loads((tmp_path / "est" / "augmented" / "summary.json").read_text())["thinking_budget"]
    assert budget["budget"] == 100 and budget["documents"] == 10  # 10 tokens a document, as planned
    assert est["projection"]["mean_thinking_tokens"] == 10
    assert est["projection"]["teacher_generated_tokens"] == 500
