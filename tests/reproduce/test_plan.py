"""The experiment's plan and read-back: checkpoints, the arms' commands, the task file, per-problem results,
and the job runner's dependencies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tpt.core.errors import ArtifactError, ConfigError
from tpt.formats.records import AugmentedRecord, Provenance, RecordInput
from tpt.reproduce.experiment import LLM_TEACHER_JOB, Layout, plan_arms, task_file
from tpt.reproduce.presets import SCALES, TASKS, Scale, get_scale
from tpt.reproduce.results import arm_results, trajectory_quality


def test_checkpoints_are_geometric_whole_batches_ending_at_the_budget() -> None:
    scale = get_scale("default")
    points = scale.checkpoints()
    assert points[-1] >= scale.tokens_per_arm and points[-1] - scale.tokens_per_arm < scale.batch_tokens
    assert all(p % scale.batch_tokens == 0 for p in points)
    assert points[0] == pytest.approx(scale.tokens_per_arm / 32, rel=0.03)
    assert len(points) == scale.num_checkpoints
    for s in SCALES.values():
        assert len(set(s.checkpoints())) == len(s.checkpoints())


def test_bad_scales_are_rejected() -> None:
    with pytest.raises(ConfigError):
        get_scale("huge")
    with pytest.raises(ConfigError):
        Scale(name="x", tokens_per_arm=1000, seeds=(0,))
    with pytest.raises(ConfigError):
        Scale(name="x", tokens_per_arm=10**6, seeds=(0,), ablation_seeds=(1,))
    with pytest.raises(ConfigError):
        Scale(name="x", tokens_per_arm=10**6, seeds=(0,), primary_endpoint="best-of-both")


def test_the_default_scale_fixes_its_protocol_before_training() -> None:
    scale = get_scale("default")
    assert scale.primary_endpoint == "testbed-cot" and len(scale.seeds) >= 3
    assert len(get_scale("full").seeds) >= 5 and get_scale("full").ablation_seeds


def test_every_arm_runs_the_user_commands_on_the_same_budget_and_task_file(tmp_path: Path) -> None:
    scale = get_scale("default")
    layout = Layout(root=tmp_path)
    jobs = plan_arms(layout, scale)
    names = [j.name for j in jobs]
    assert names[0] == LLM_TEACHER_JOB
    assert names[1:] == [f"seed-{s}-{a}" for s in scale.seeds for a in ("raw", "tpt", "tpt-shuffled")] + [
        f"seed-{s}-tpt-llm" for s in scale.seeds
    ]
    by = {j.name: j for j in jobs}
    for job in jobs[1:]:
        train = next(s.argv for s in job.steps if s.name == "train")
        assert train[train.index("--tokens") + 1] == str(scale.tokens_per_arm)  # the same budget
        ev = next(s.argv for s in job.steps if s.name == "eval")
        assert ev[ev.index("--task-file") + 1] == str(layout.tasks)  # the same protocol
        pack = next(s.argv for s in job.steps if s.name == "pack")
        assert "--paper-faithful" in pack  # the paper filters nothing
    assert [s.name for s in by["seed-0-tpt"].steps] == ["augment", "pack", "train", "eval"]
    assert by["seed-0-tpt-llm"].after == (LLM_TEACHER_JOB,)
    assert [s.name for s in by["seed-0-tpt-llm"].steps] == ["pack", "train", "eval"]
    llm_pack = by["seed-0-tpt-llm"].steps[0].argv
    assert llm_pack[1] == str(layout.llm_teacher)
    raw_aug, tpt_aug = by["seed-0-raw"].steps[0].argv, by["seed-0-tpt"].steps[0].argv
    assert raw_aug[1] == tpt_aug[1] == str(layout.corpus("raw"))  # the same documents
    assert by["seed-1-tpt-shuffled"].steps[0].argv[1] == str(layout.corpus("shuffled-seed-1"))
    teacher = by[LLM_TEACHER_JOB]
    assert [s.argv[0] for s in teacher.steps] == ["augment", "eval"]
    assert "--backend" not in teacher.steps[0].argv  # the default: the embedded SmolLM2, in-process
    assert teacher.steps[1].argv[1] == "embedded" and str(layout.primary_task) in teacher.steps[1].argv
    full = plan_arms(layout, get_scale("full"))
    assert {"seed-0-tpt-exercises", "seed-0-tpt-weak"} <= {j.name for j in full}


def test_task_file_loads_in_tpt_eval(tmp_path: Path) -> None:
    from tpt.evaluate.extract import extract, parse_rule
    from tpt.evaluate.taskfile import load_task_file

    (tmp_path / "heldout.jsonl").write_text(json.dumps({"id": "a", "question": "q?", "answer": "3"}) + "\n")
    (tmp_path / "tasks.json").write_text(
        json.dumps(task_file(tmp_path / "heldout.jsonl", get_scale("default")))
    )
    tasks = load_task_file(tmp_path / "tasks.json")
    assert [t.name for t in tasks] == list(TASKS)
    cot = tasks[0]
    rule = parse_rule(cot.metrics[0][1])
    assert extract(rule, " 8 x 6 = 48. 48 + 7 = 55. Answer: 55.") == "55"
    assert extract(rule, " 8 x 6 = 48. 48 + 7 = 55.") is None  # no answer given: wrong, not guessed


def test_per_problem_results_from_the_samples_file(tmp_path: Path) -> None:
    samples = tmp_path / "eval.samples.jsonl"
    samples.write_text("".join(json.dumps(s) + "\n" for s in [
        {"task": "testbed-cot", "id": "a", "tokens_seen": 2000, "correct": {"accuracy": True}},
        {"task": "testbed-cot", "id": "b", "tokens_seen": 2000, "correct": {"accuracy": False}},
        {"task": "testbed-cot", "id": "b", "tokens_seen": 1000, "correct": {"accuracy": True}},
        {"task": "testbed-cot", "id": "a", "tokens_seen": 1000, "correct": {"accuracy": False}},
        {"task": "other", "id": "a", "tokens_seen": 1000, "correct": {"accuracy": True}},
    ]))  # fmt: skip
    res = arm_results(samples, ["a", "b"])
    assert set(res) == {"testbed-cot"}
    assert res["testbed-cot"].tokens == (1000, 2000)
    assert res["testbed-cot"].correct == ((0.0, 1.0), (1.0, 0.0))
    with pytest.raises(ArtifactError):
        arm_results(samples, ["a", "b", "c"])  # a checkpoint misses a problem: refused, not averaged


def _trajectory(doc_id: str, thinking: str, finish_reason: str) -> AugmentedRecord:
    return AugmentedRecord(
        id=doc_id, text="a document", thinking=thinking, finish_reason=finish_reason, thinking_closed=True,
        thinking_method="think_tags", doc_tokens=2, doc_truncated=False, prompt_tokens=9, completion_tokens=9,
        source="corpus.jsonl", meta={}, input=RecordInput(file="corpus.jsonl", line=1, index=0),
        provenance=Provenance(backend="procedural", model=None, template="paper", template_hash="h",
                              sampling={}, seed=None, attempts=1),
    )  # fmt: skip


def test_trajectory_quality_checks_each_arithmetic_statement() -> None:
    records = [_trajectory("x", "8 x 6 = 48. 48 + 7 = 56. The answer is 55.", "stop"),
               _trajectory("y", "The text is about pens.", "length")]  # fmt: skip
    q = trajectory_quality(records, {"x": "55", "y": "12"})
    assert q["arithmetic_statements"] == 2 and q["arithmetic_correct_share"] == 0.5
    assert q["reaches_document_answer_share"] == 0.5 and q["hit_length_limit_share"] == 0.5


def test_makespan_follows_the_list_schedule() -> None:
    from tpt.reproduce.runner import makespan

    assert makespan([3, 3, 2], 2) == 5
    assert makespan([5, 1, 1, 1], 2) == 5
    assert makespan([1, 2, 3], 1) == 6


def test_a_job_waits_for_the_jobs_it_needs_and_fails_with_them(tmp_path: Path) -> None:
    from tpt.reproduce.runner import Job, Step, run_jobs

    ok = Job(name="first", steps=(Step(name="s", argv=("--version",)),))
    bad = Job(name="bad", steps=(Step(name="s", argv=("no-such-stage",)),))
    needs_bad = Job(name="needs-bad", steps=(Step(name="s", argv=("--version",)),), after=("bad",))
    with pytest.raises(ArtifactError, match="needs-bad"):
        run_jobs([needs_bad, bad, ok], work_dir=tmp_path, parallel=2, say=lambda m: None)
    with pytest.raises(ArtifactError, match="not planned"):
        run_jobs(
            [Job(name="x", steps=(), after=("ghost",))], work_dir=tmp_path, parallel=1, say=lambda m: None
        )


def test_the_llm_teacher_is_scored_by_its_students_primary_task(tmp_path: Path) -> None:
    """Like for like: the teacher's task file holds the primary task exactly as the students' does."""
    from tpt.reproduce.experiment import prepare
    from tpt.reproduce.testbed import CorpusConfig

    scale = get_scale("quick")
    layout = Layout(root=tmp_path)
    facts = prepare(layout, scale, CorpusConfig(pool_documents=scale.pool_documents))
    students = json.loads(layout.tasks.read_text())["tasks"]
    [teacher] = json.loads(layout.primary_task.read_text())["tasks"]
    assert teacher == next(t for t in students if t["name"] == scale.primary_endpoint)
    assert facts["pool_documents"] == scale.pool_documents
    heldout = [json.loads(x) for x in layout.heldout.read_text().splitlines()]
    assert len(heldout) == 3 * scale.test_per_level and all("computation" in r for r in heldout)
