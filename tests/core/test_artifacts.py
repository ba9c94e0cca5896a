"""Manifests bind an output directory to the config that made it."""

import pytest

from tpt.core.artifacts import claim_output_dir, fingerprint, read_json
from tpt.core.errors import ConfigError


def test_fingerprint_is_order_independent():
    assert fingerprint({"a": 1, "b": [1, 2]}) == fingerprint({"b": [1, 2], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_claim_resume_refuse_override(tmp_path):
    claim_output_dir(tmp_path, stage="s", config={}, fingerprinted={"lr": 1})
    claim_output_dir(tmp_path, stage="s", config={}, fingerprinted={"lr": 1})
    assert len(read_json(tmp_path / "manifest.json")["resumed_at"]) == 1
    with pytest.raises(ConfigError, match="changed: lr"):
        claim_output_dir(tmp_path, stage="s", config={}, fingerprinted={"lr": 2})
    claim_output_dir(tmp_path, stage="s", config={}, fingerprinted={"lr": 2}, override=True)
    with pytest.raises(ConfigError, match="tpt s"):
        claim_output_dir(tmp_path, stage="other", config={}, fingerprinted={"lr": 2})
