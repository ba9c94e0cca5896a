"""The monotone fit, the factor read off it, and the bootstrap intervals, on hand-made curves and results."""

from __future__ import annotations

import math

import pytest

from tpt.reproduce.efficiency import Curve
from tpt.reproduce.stats import Results, bootstrap, factor, fit, geometric_mean, isotonic

TOKENS = (1_000, 2_000, 4_000, 8_000, 16_000)


def test_isotonic_pools_adjacent_violators():
    assert isotonic([0.1, 0.3, 0.2, 0.5]) == pytest.approx([0.1, 0.25, 0.25, 0.5])
    assert isotonic([0.5, 0.4, 0.3]) == pytest.approx([0.4, 0.4, 0.4])
    assert isotonic([0.1, 0.2, 0.3]) == [0.1, 0.2, 0.3]


def test_a_noisy_spike_does_not_decide_the_factor():
    """Raw touches 0.5 once at 2k tokens and falls back: by the first crossing of the raw curve it 'needed'
    2k tokens; the monotone fit pools the spike away, so the target is its fitted final value."""
    raw = Curve(tokens=TOKENS, accuracy=(0.1, 0.5, 0.2, 0.3, 0.4))
    tpt = Curve(tokens=TOKENS, accuracy=(0.1, 0.2, 0.4, 0.6, 0.7))
    fitted = fit(raw)
    assert list(fitted.accuracy) == pytest.approx([0.1, 1 / 3, 1 / 3, 1 / 3, 0.4])
    f = factor(raw, tpt)
    assert f.reached and f.target == pytest.approx(0.4)
    assert f.raw_tokens == 16_000  # the fit reaches its final value only at the end
    assert f.arm_tokens == 4_000  # TPT reaches 0.4 exactly at 4k
    assert f.value == pytest.approx(4.0)


def test_an_arm_that_never_reaches_the_target_gets_its_bound_flagged():
    raw = Curve(tokens=TOKENS, accuracy=(0.1, 0.2, 0.3, 0.4, 0.5))
    weak = Curve(tokens=TOKENS, accuracy=(0.1, 0.1, 0.2, 0.2, 0.3))
    f = factor(raw, weak)
    assert not f.reached and f.arm_tokens is None
    assert f.value == pytest.approx(16_000 / 16_000)  # raw needed its whole budget: the bound is 1
    assert f.value <= 1


def test_the_same_curve_gives_factor_one():
    c = Curve(tokens=TOKENS, accuracy=(0.1, 0.2, 0.3, 0.4, 0.5))
    assert factor(c, c).value == pytest.approx(1.0)


def test_geometric_mean():
    assert geometric_mean([2.0, 8.0]) == pytest.approx(4.0)
    assert geometric_mean([0.5, 2.0]) == pytest.approx(1.0)


def _results(rates: list[float], n: int, offset: int = 0) -> Results:
    """n problems; at checkpoint i the first round(rate_i * n) problems (rotated by offset) are right."""
    rows = []
    for r in rates:
        k = round(r * n)
        rows.append(tuple(1.0 if (j + offset) % n < k else 0.0 for j in range(n)))
    return Results(tokens=TOKENS, correct=tuple(rows))


def test_bootstrap_of_identical_arms_includes_no_effect():
    n = 60
    clusters = [f"c{j // 2}" for j in range(n)]
    raw = {s: _results([0.1, 0.2, 0.3, 0.4, 0.5], n, offset=s) for s in (0, 1, 2)}
    same = {s: _results([0.1, 0.2, 0.3, 0.4, 0.5], n, offset=s + 7) for s in (0, 1, 2)}
    out = bootstrap(raw, same, clusters, replicates=200)
    assert out["factor"].includes(1.0)
    assert out["factor"].value == pytest.approx(1.0)


def test_bootstrap_of_a_clearly_better_arm_excludes_no_effect():
    n = 80
    clusters = [f"c{j}" for j in range(n)]
    raw = {s: _results([0.05, 0.1, 0.15, 0.2, 0.25], n, offset=s) for s in (0, 1, 2)}
    better = {s: _results([0.1, 0.3, 0.6, 0.7, 0.8], n, offset=s) for s in (0, 1, 2)}
    out = bootstrap(raw, better, clusters, replicates=200)
    lo, hi = out["factor"].lo, out["factor"].hi
    assert lo > 1.0 and lo <= out["factor"].value <= hi
    fin = out["final_accuracy"]
    assert fin.value == pytest.approx(0.8) and fin.lo < 0.8 < fin.hi + 1e-9
    assert set(out["per_seed"]) == {0, 1, 2}
    assert all(math.isfinite(f.value) for f in out["per_seed"].values())


def test_bootstrap_refuses_unpaired_seeds():
    from tpt.core.errors import InputError

    r = _results([0.1, 0.2, 0.3, 0.4, 0.5], 10)
    with pytest.raises(InputError):
        bootstrap({0: r}, {1: r}, [str(j) for j in range(10)], replicates=10)


def test_the_verdict_follows_the_interval_and_never_reached_arms_are_below_raw():
    from tpt.reproduce.results import verdict
    from tpt.reproduce.stats import Interval

    assert verdict(Interval(value=1.8, lo=1.3, hi=2.6), {"0": True, "1": True}) == "gain"
    assert verdict(Interval(value=0.6, lo=0.4, hi=0.8), {"0": True}) == "loss"
    assert verdict(Interval(value=1.1, lo=0.8, hi=1.5), {"0": True, "1": False}) == "no measurable effect"
    # bounds of 1.0 put 1 inside the interval, yet the arm is below raw in every seed
    assert verdict(Interval(value=0.85, lo=0.6, hi=1.0), {"0": False, "1": False}).startswith("below raw")
