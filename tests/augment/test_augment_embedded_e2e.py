"""`tpt augment` end to end on the bundled corpus with the real embedded teacher (SmolLM2-135M-Instruct).

A handful of documents and short thinking keep it to seconds; it proves the default path a user runs
first (no --backend, no --model) writes real trajectories with the provenance the paper's method needs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import tpt

CORPUS = Path(tpt.__file__).parent / "data" / "sample_corpus"


@pytest.mark.slow
def test_default_teacher_augments_the_bundled_corpus(tmp_path):
    out = tmp_path / "aug"
    cmd = [
        sys.executable,
        "-m",
        "tpt",
        "augment",
        str(CORPUS),
        "--output",
        str(out),
        "--limit",
        "3",
        "--max-thinking-tokens",
        "24",
        "--max-doc-tokens",
        "96",
        "--batch-size",
        "3",
        "--seed",
        "0",
        "--no-progress",
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [
        json.loads(line) for line in (out / "shards" / "part-00000000.jsonl").read_text().split("\n") if line
    ]
    first = [
        json.loads(line) for line in (CORPUS / "discrete_math_levin.jsonl").read_text().split("\n") if line
    ][:3]
    assert [r["id"] for r in records] == [d["id"] for d in first]  # ids unchanged, input order
    for rec, doc in zip(records, first, strict=True):
        assert doc["text"].startswith(rec["text"]) and rec["doc_truncated"] and rec["doc_tokens"] <= 96
        assert rec["thinking"].strip() and "<think>" not in rec["thinking"]
        assert rec["thinking_method"] == "opened_think"  # SmolLM2 is not a reasoning model
        assert rec["finish_reason"] in ("stop", "length") and 0 < rec["completion_tokens"] <= 24
        assert rec["meta"]["license"] == doc["license"]
        prov = rec["provenance"]
        assert prov["backend"] == "transformers" and prov["model"] == "SmolLM2-135M-Instruct"
        # Every sampling parameter in force: the transformers sampler has no top-k, min-p or penalty.
        assert prov["sampling"] == {
            "temperature": 0.6,
            "top_p": 0.9,
            "max_tokens": 24,
            "stop": ["</think>"],
            "seed": 0,
            "top_k": -1,
            "min_p": 0.0,
            "repetition_penalty": 1.0,
            "presence_penalty": 0.0,
            "frequency_penalty": 0.0,
        }
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] == 3 and summary["complete"]
