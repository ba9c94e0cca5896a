"""Fixtures of the reproduce tests: the testbed's default world and a small generated corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tpt.reproduce.testbed import CorpusConfig, World, make_world


@pytest.fixture(scope="session")
def corpus_config() -> CorpusConfig:
    return CorpusConfig()


@pytest.fixture(scope="session")
def world(corpus_config: CorpusConfig) -> World:
    return make_world(corpus_config)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
