"""`tpt pack --executor ray` on a real local Ray cluster (127.0.0.1 only): the checks and tokenization run
in Ray workers, and the output directory is byte-identical to --executor local, also for a run killed
with --executor local and finished with --executor ray."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.pack.test_kill_resume import corpus, files, pack
from tpt.cli import main


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    from tpt.core.raycluster import init_local, is_loopback, node_addresses

    # address="local": a new cluster, even while another one of this machine is running
    init_local(
        ray,
        address="local",
        num_cpus=2,
        include_dashboard=False,
        logging_level="warning",
        log_to_driver=False,
    )
    try:
        assert all(is_loopback(a) for a in node_addresses(ray))
        yield ray
    finally:
        ray.shutdown()


def same_output(a: Path, b: Path) -> None:
    made, want = files(a), files(b)
    assert sorted(made) == sorted(want)
    for name in want:
        if name not in ("manifest.json", "stats.json"):
            assert made[name] == want[name], name
    stats, expected = json.loads(made["stats.json"]), json.loads(want["stats.json"])
    stats.pop("wall_seconds"), expected.pop("wall_seconds")
    assert stats == expected


def test_ray_executor_packs_what_local_packs_and_resumes_a_local_run(tmp_path, word_tok, ray_cluster):
    src, _ = corpus(tmp_path / "records")
    args = [str(src), "--tokenizer", str(word_tok), "--seq-len", "16", "--shard-tokens", "64",
            "--batch-size", "8", "--disable-check", "copy", "--disable-check", "repetition",
            "--min-thinking-words", "10", "--no-progress", "--mix", "0.3", "--weights", "a=1.5",
            "--shuffle-buffer", "25", "--megatron"]  # fmt: skip
    local, on_ray, resumed = tmp_path / "local", tmp_path / "ray", tmp_path / "resumed"
    assert main(["pack", *args, "--output", str(local), "--workers", "0"]) == 0
    assert main(["pack", *args, "--output", str(on_ray), "--executor", "ray", "--workers", "2"]) == 0
    same_output(on_ray, local)
    # Killed before its 3rd commit with --executor local, finished on Ray.
    assert pack(tmp_path, [*args, "--workers", "0"], resumed, tmp_path / "n1", 3) == -9
    assert (resumed / "parts").is_dir()
    assert main(["pack", *args, "--output", str(resumed), "--executor", "ray"]) == 0
    same_output(resumed, local)
