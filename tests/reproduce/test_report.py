"""The report says when a factor has no meaning instead of printing the estimator's degenerate 1.00x."""

from __future__ import annotations

from tpt.reproduce.report import factor_cell


def _world(final: float) -> dict:
    acc = {"value": final, "ci": [final, final]}
    return {"primary_endpoint": "e", "arms": {"b": {"e": {"final_accuracy": acc}}}}


def test_a_factor_against_an_arm_that_ends_at_zero_is_undefined() -> None:
    c = {"against": "b", "factor": {"value": 1.0, "ci": [1.0, 1.0]}}
    assert factor_cell(_world(0.0), c) == "undefined (b ends at 0%)"
    assert factor_cell(_world(0.05), c) == "1.00x [1.00, 1.00]"
