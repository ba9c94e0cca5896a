"""Curves and where they first reach a target, with the expected numbers worked out by hand (the factor
itself, read off monotone fits, is tested in test_stats.py)."""

import math

import pytest

from tpt.core.errors import InputError
from tpt.reproduce.efficiency import Curve, tokens_to_reach


def test_tokens_to_reach_interpolates_in_log_tokens() -> None:
    curve = Curve(tokens=(100_000, 1_000_000), accuracy=(0.2, 0.6))
    assert tokens_to_reach(curve, 0.4) == pytest.approx(math.sqrt(1e5 * 1e6))  # 316228
    assert tokens_to_reach(curve, 0.6) == pytest.approx(1e6)
    assert tokens_to_reach(curve, 0.1) == 100_000  # already there at the first checkpoint
    assert tokens_to_reach(curve, 0.7) is None


def test_curve_cut_at_a_stop_point() -> None:
    c = Curve(tokens=(1000, 2000, 4000), accuracy=(0.1, 0.2, 0.3))
    assert c.until(2500) == Curve(tokens=(1000, 2000), accuracy=(0.1, 0.2))
    with pytest.raises(InputError):
        c.until(10)


def test_bad_curves_are_rejected() -> None:
    with pytest.raises(InputError):
        Curve(tokens=(), accuracy=())
    with pytest.raises(InputError):
        Curve(tokens=(2, 1), accuracy=(0.1, 0.2))
    with pytest.raises(InputError):
        Curve(tokens=(1, 2), accuracy=(0.1,))
