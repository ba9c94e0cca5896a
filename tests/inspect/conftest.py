"""A real pipeline for the report tests: `tpt augment` (the fault-injecting OpenAI stub on 127.0.0.1: some
trajectories loop and are stopped by the loop guard, some are cut by the length limit, the Python book's
documents fail), `tpt validate` and `tpt pack` on the bundled sample corpus plus two hostile documents."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pytest

from tpt.cli import main
from tpt.testing.openai_stub import StubConfig, StubServer

CORPUS = Path(str(resources.files("tpt").joinpath("data/sample_corpus")))
HOSTILE_TEXT = (
    "A page about HTML. <script>document.title='pwned';window.__pwned=1</script> The tag </script> ends a "
    'script, and </think> ends a thought; <img src=x onerror="window.__pwned=2"> & &amp; are entities. '
    + "Every word here is plain text that a report must show as written, never run. "
    * 3
)


@dataclass
class Pipeline:
    root: Path
    aug: Path
    val: Path
    pack: Path
    corpus: Path
    hostile_text: str = HOSTILE_TEXT


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory) -> Pipeline:
    root = tmp_path_factory.mktemp("inspect")
    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus, ignore=shutil.ignore_patterns("*.md"))
    hostile = [
        {"id": "hostile/1", "source": "hostile", "text": HOSTILE_TEXT, "reasoning_intensity": 1.5},
        {"id": "hostile/2", "source": "hostile", "text": "</script><script>window.__pwned=3</script>" * 4},
    ]
    (corpus / "hostile.jsonl").write_text("".join(json.dumps(d) + "\n" for d in hostile), encoding="utf-8")
    p = Pipeline(root=root, aug=root / "aug", val=root / "val", pack=root / "pack", corpus=corpus)
    stub = StubConfig(
        latency_ms=1, words=60, loop_after=40, loop_rate=0.25, length_rate=0.15,
        schedule=(("Python", ("400*",)),),
    )  # fmt: skip
    with StubServer(stub) as server:
        argv = ["augment", str(corpus), "--output", str(p.aug), "--backend", "openai", "--model", "stub",
                "--base-url", server.base_url, "--max-retries", "0", "--no-progress",
                "--max-thinking-tokens", "300", "--loop-window", "64",
                # 4 in flight: the first answers are the math documents' successes, so the injected 400s
                # of the Python ones later are documents' failures, never "the server rejects everything"
                "--concurrency", "4"]  # fmt: skip
        assert main(argv) == 0
    assert main(["validate", str(p.aug), "--output", str(p.val)]) == 0
    tok = root / "tok"
    assert main(["tokenizer", "train", str(CORPUS), "--vocab-size", "600", "--output", str(tok)]) == 0
    argv = ["pack", str(p.aug), "--output", str(p.pack), "--tokenizer", str(tok), "--seq-len", "256",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    return p
