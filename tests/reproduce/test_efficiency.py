"""The data-efficiency factor on hand-made curves, with the expected numbers worked out by hand."""

import math

import pytest

from tpt.errors import InputError
from tpt.reproduce.efficiency import Curve, data_efficiency, mean_factor, tokens_to_reach


def test_tokens_to_reach_interpolates_in_log_tokens() -> None:
    curve = Curve(tokens=(100_000, 1_000_000), accuracy=(0.2, 0.6))
    assert tokens_to_reach(curve, 0.4) == pytest.approx(math.sqrt(1e5 * 1e6))  # 316228
    assert tokens_to_reach(curve, 0.6) == pytest.approx(1e6)
    assert tokens_to_reach(curve, 0.1) == 100_000  # already there at the first checkpoint
    assert tokens_to_reach(curve, 0.7) is None


def test_factor_when_tpt_reaches_raw_final_accuracy_early() -> None:
    raw = Curve(tokens=(1000, 2000, 4000, 8000), accuracy=(0.05, 0.10, 0.20, 0.40))
    tpt = Curve(tokens=(1000, 2000, 4000, 8000), accuracy=(0.10, 0.40, 0.80, 0.90))
    eff = data_efficiency(raw, tpt)
    assert eff.target_accuracy == 0.40
    assert eff.raw_tokens == 8000
    assert eff.tpt_tokens == pytest.approx(2000)
    assert eff.factor == pytest.approx(4.0)
    assert eff.factor_upper_bound is None


def test_factor_interpolated_between_checkpoints() -> None:
    raw = Curve(tokens=(1000, 4000), accuracy=(0.1, 0.3))
    tpt = Curve(tokens=(1000, 4000), accuracy=(0.2, 0.4))
    # tpt reaches 0.3 halfway (in log tokens) between 1000 and 4000 -> 2000 -> factor 4000 / 2000
    assert data_efficiency(raw, tpt).factor == pytest.approx(2.0)


def test_arm_that_never_reaches_the_target_has_no_factor_only_a_bound() -> None:
    raw = Curve(tokens=(1000, 2000, 4000), accuracy=(0.1, 0.3, 0.5))
    tpt = Curve(tokens=(1000, 2000, 4000), accuracy=(0.1, 0.2, 0.45))
    eff = data_efficiency(raw, tpt)
    assert eff.tpt_tokens is None and eff.factor is None
    assert eff.factor_upper_bound == pytest.approx(1.0)
    mean, bound_only = mean_factor(
        [eff, data_efficiency(raw, Curve(tokens=(1000, 4000), accuracy=(0.5, 0.6)))]
    )
    assert bound_only is True
    assert mean == pytest.approx((1.0 + 4.0) / 2)


def test_raw_curve_that_peaked_early_counts_its_first_crossing() -> None:
    raw = Curve(tokens=(1000, 2000, 4000), accuracy=(0.1, 0.5, 0.5))
    tpt = Curve(tokens=(1000, 2000, 4000), accuracy=(0.5, 0.6, 0.7))
    eff = data_efficiency(raw, tpt)
    assert eff.raw_tokens == pytest.approx(2000)
    assert eff.factor == pytest.approx(2.0)


def test_earlier_stop_point_cuts_both_curves() -> None:
    raw = Curve(tokens=(1000, 2000, 4000), accuracy=(0.1, 0.2, 0.6))
    tpt = Curve(tokens=(1000, 2000, 4000), accuracy=(0.2, 0.5, 0.9))
    eff = data_efficiency(raw, tpt, stop_tokens=2000)
    assert eff.stop_tokens == 2000 and eff.target_accuracy == 0.2
    assert eff.factor == pytest.approx(2.0)  # raw needs 2000, tpt 1000


def test_bad_curves_are_rejected() -> None:
    with pytest.raises(InputError):
        Curve(tokens=(2000, 1000), accuracy=(0.1, 0.2))
    with pytest.raises(InputError):
        Curve(tokens=(1000,), accuracy=(0.1, 0.2))
    with pytest.raises(InputError):
        Curve(tokens=(1000, 2000), accuracy=(0.1, 0.2)).until(500)
