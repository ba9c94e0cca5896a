"""The estimator on hand-made curves with known answers, and on simulated runs with a known true factor."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

from tpt.compare.estimator import (
    Interval,
    SeedRun,
    _boot_weights,
    _strata,
    accuracy_difference,
    accuracy_interval,
    common_tokens,
    curve,
    efficiency_factor,
    factor_interval,
    informative_checkpoints,
    t_quantile,
    tokens_to_reach,
    verdict,
)
from tpt.core.errors import InputError

sys.path.insert(0, str(Path(__file__).parent))
from simulate import difficulties, simulate  # noqa: E402

TOK = (1e5, 1e6, 1e7)


def run(arm: str, seed: str, accs, n: int = 10, tokens=TOK, levels=None) -> SeedRun:
    """A run whose first round(acc * n) items are right at each checkpoint (nested: an item once right
    stays right when the accuracy grows)."""
    rows = tuple(tuple(i < round(a * n) for i in range(n)) for a in accs)
    return SeedRun(arm, seed, tuple(tokens), rows, levels)


# --- tokens_to_reach ------------------------------------------------------------------------------------


def test_crossing_is_log_linear_between_checkpoints():
    assert tokens_to_reach([(1e5, 0.2), (1e6, 0.6)], 0.4) == pytest.approx(10**5.5)
    assert tokens_to_reach([(1e5, 0.2), (1e6, 0.6)], 0.3) == pytest.approx(10**5.25)


def test_crossing_at_the_first_checkpoint_and_never():
    assert tokens_to_reach([(1e5, 0.5), (1e6, 0.6)], 0.3) == 1e5
    assert tokens_to_reach([(1e5, 0.1), (1e6, 0.2)], 0.3) is None


def test_crossing_on_a_plateau_is_its_first_point():
    assert tokens_to_reach([(1e5, 0.1), (1e6, 0.3), (1e7, 0.3)], 0.3) == 1e6


def test_tie_at_a_checkpoint_is_that_checkpoint_even_with_rounding():
    assert tokens_to_reach([(1e5, 0.1), (1e6, 0.1 + 0.2)], 0.3) == 1e6  # 0.1 + 0.2 != 0.3 in floats
    # a dip after the first crossing does not move it
    assert tokens_to_reach([(1e5, 0.1), (1e6, 0.5), (1e7, 0.2)], 0.5) == 1e6


# --- efficiency_factor: the rules ------------------------------------------------------------------------


def test_both_reach():
    base, arm = run("raw", "1", (0.1, 0.3, 0.5)), run("tpt", "1", (0.1, 0.5, 0.6))
    assert efficiency_factor(base, arm, 0.5) == pytest.approx(10.0)
    assert efficiency_factor(base, arm, 0.3) == pytest.approx(1e6 / 10**5.5)


def test_arm_that_never_reaches_the_target_gets_a_factor_below_one_not_a_bound():
    base, arm = run("raw", "1", (0.1, 0.3, 0.5)), run("tpt", "1", (0.1, 0.2, 0.3))
    # baseline reaches the arm's final 0.3 at 1e6; the arm used its whole budget 1e7
    assert efficiency_factor(base, arm, 0.5) == pytest.approx(0.1)
    iv = factor_interval([base], [arm], n_boot=300)
    assert iv.value == pytest.approx(0.1)
    assert iv.high < 1.0 and verdict(iv, 1.0) == "loss"


def test_baseline_seed_that_never_reaches_the_target_is_the_mirror_rule():
    base, arm = run("raw", "1", (0.1, 0.2, 0.3)), run("tpt", "1", (0.1, 0.3, 0.5))
    # target 0.5 is out of the baseline's reach; the arm reaches the baseline's final 0.3 at 1e6
    assert efficiency_factor(base, arm, 0.5) == pytest.approx(1e7 / 1e6)


def test_neither_reaches_the_lower_final_is_compared():
    base, arm = run("raw", "1", (0.1, 0.2, 0.4)), run("tpt", "1", (0.1, 0.2, 0.3))
    assert efficiency_factor(base, arm, 0.9) == pytest.approx(10**6.5 / 1e7)  # baseline reaches 0.3 at 10^6.5
    tied = run("tpt", "1", (0.0, 0.3, 0.4))
    assert efficiency_factor(base, tied, 0.9) == pytest.approx(1.0)  # equal finals: budget / budget


def test_plateau_in_the_baseline_and_in_the_arm():
    flat, rising = run("raw", "1", (0.1, 0.3, 0.3)), run("tpt", "1", (0.1, 0.2, 0.3))
    assert efficiency_factor(flat, rising, 0.3) == pytest.approx(0.1)
    assert efficiency_factor(rising, flat, 0.3) == pytest.approx(10.0)


def test_budgets_differ():
    base = run("raw", "1", (0.1, 0.3, 0.5))
    longer = run("tpt", "1", (0.1, 0.3, 0.4, 0.5), tokens=(1e5, 1e6, 1e7, 1e8))
    assert efficiency_factor(base, longer, 0.5) == pytest.approx(0.1)


# --- factor_interval ------------------------------------------------------------------------------------


def test_ties_identical_arms_give_exactly_one_and_no_effect():
    base = [run("raw", s, a) for s, a in (("1", (0.1, 0.3, 0.5)), ("2", (0.0, 0.4, 0.6)))]
    arm = [run("tpt", s, a) for s, a in (("1", (0.1, 0.3, 0.5)), ("2", (0.0, 0.4, 0.6)))]
    iv = factor_interval(base, arm, n_boot=200)
    assert iv.value == pytest.approx(1.0)
    assert iv.includes(1.0) and verdict(iv, 1.0) == "no measurable effect"


def test_positive_control_exact_shift_in_tokens_gives_that_factor():
    base = [
        run("raw", s, a) for s, a in (("1", (0.1, 0.3, 0.5)), ("2", (0.0, 0.4, 0.6)), ("3", (0.2, 0.2, 0.7)))
    ]
    arm = [SeedRun("tpt", r.seed, tuple(t / 3.0 for t in r.tokens), r.correct) for r in base]
    iv = factor_interval(base, arm, n_boot=200)
    assert iv.value == pytest.approx(3.0)
    assert iv.low == pytest.approx(3.0) and iv.high == pytest.approx(3.0)
    assert verdict(iv, 1.0) == "gain"


def test_positive_control_simulated_factor_two_is_recovered_and_detected():
    rng = np.random.default_rng(7)
    d = difficulties(rng, 400)
    seeds = [str(s) for s in range(5)]
    base, arm = simulate(rng, "raw", seeds, d), simulate(rng, "tpt", seeds, d, factor=2.0)
    iv = factor_interval(base, arm, n_boot=400, seed=1)
    assert iv.includes(2.0)
    assert iv.low > 1.0 and verdict(iv, 1.0) == "gain"
    assert iv.n_seeds == 5 and iv.n_items == 400 and iv.df is not None


def test_positive_control_coverage_over_repeated_simulations():
    hits = 0
    for r in range(15):
        rng = np.random.default_rng(100 + r)
        d = difficulties(rng, 200)
        seeds = [str(s) for s in range(4)]
        iv = factor_interval(simulate(rng, "raw", seeds, d), simulate(rng, "tpt", seeds, d, factor=2.0),
                             n_boot=150, seed=r)  # fmt: skip
        hits += iv.includes(2.0)
    assert hits >= 12  # nominal 95%: 12 of 15 fails with probability < 0.01 at true coverage 0.95


def test_negative_control_interval_contains_one_in_about_95_percent():
    covered, widths = 0, []
    reps = 60
    for r in range(reps):
        rng = np.random.default_rng(r)
        d = difficulties(rng, 200)
        seeds = ["1", "2", "3"]
        iv = factor_interval(simulate(rng, "a", seeds, d), simulate(rng, "b", seeds, d), n_boot=150, seed=r)
        covered += iv.includes(1.0)
        widths.append(iv.high / iv.low)
    assert covered >= 51  # >= 85%; at a true 95%, fewer than 51 of 60 has probability < 0.01
    # and the interval is not uselessly wide: the same instrument detects a factor of 2 (test above)
    assert float(np.median(widths)) < 6.0


def test_one_seed_uses_the_item_bootstrap_only_and_says_so():
    base, arm = [run("raw", "1", (0.1, 0.3, 0.5), n=20)], [run("tpt", "1", (0.1, 0.4, 0.6), n=20)]
    iv = factor_interval(base, arm, n_boot=300)
    assert iv.seed_variance is None and iv.df is None and iv.n_seeds == 1
    assert "one seed" in iv.method and "item bootstrap only" in iv.method
    assert iv.item_variance > 0 and iv.low < iv.value < iv.high


def test_seeds_are_paired_by_id_not_by_order():
    b1, b2 = run("raw", "1", (0.1, 0.3, 0.5)), run("raw", "2", (0.1, 0.2, 0.5))
    a1, a2 = run("tpt", "1", (0.1, 0.3, 0.5)), run("tpt", "2", (0.1, 0.2, 0.5))
    iv = factor_interval([b1, b2], [a2, a1], n_boot=100)
    assert iv.per_seed == {"1": pytest.approx(1.0), "2": pytest.approx(1.0)}
    assert "paired by id (2)" in iv.method


def test_unpaired_seed_is_left_out_and_named():
    b1, b2 = run("raw", "1", (0.1, 0.3, 0.5)), run("raw", "2", (0.1, 0.2, 0.5))
    a1 = run("tpt", "1", (0.1, 0.5, 0.5))
    iv = factor_interval([b1, b2], [a1], n_boot=100)
    assert iv.n_seeds == 1 and "left out: 2" in iv.method


def test_no_common_seed_ids_pairs_in_sorted_order():
    iv = factor_interval([run("raw", "1", (0.1, 0.3, 0.5))], [run("tpt", "9", (0.1, 0.5, 0.5))], n_boot=50)
    assert "sorted order" in iv.method and list(iv.per_seed) == ["1/9"]


def test_duplicate_seed_ids_and_mismatched_items_are_errors():
    with pytest.raises(InputError, match="same seed id"):
        factor_interval([run("raw", "1", (0.1, 0.2, 0.3))] * 2, [run("tpt", "1", (0.1, 0.2, 0.3))])
    with pytest.raises(InputError, match="different numbers of items"):
        factor_interval([run("raw", "1", (0.1, 0.2, 0.3))], [run("tpt", "1", (0.1, 0.2, 0.3), n=20)])


def test_stratified_bootstrap_keeps_each_level_size():
    levels = ("a",) * 3 + ("b",) * 7
    w = _boot_weights(_strata(levels, 10), 10, 50, np.random.default_rng(0))
    assert (w[:, :3].sum(axis=1) == 3).all() and (w[:, 3:].sum(axis=1) == 7).all()
    assert len(_strata(None, 10)) == 1


def test_interval_json():
    iv = factor_interval([run("raw", "1", (0.1, 0.3, 0.5))], [run("tpt", "1", (0.1, 0.5, 0.5))], n_boot=50)
    j = iv.to_json()
    assert j["ci"] == [iv.low, iv.high] and j["confidence"] == 0.95 and j["method"] == iv.method


# --- accuracies -----------------------------------------------------------------------------------------


def test_accuracy_interval_known_answer():
    a = run("raw", "1", (0.4,), tokens=(1e6,))
    b = run("raw", "2", (0.6,), tokens=(1e6,))
    iv = accuracy_interval([a, b], 1e6)
    # per-item means [1,1,1,1,.5,.5,0,0,0,0]: variance 2/9, of their mean 2/90; seeds: var(.4,.6)/2 = 0.01
    assert iv.value == pytest.approx(0.5)
    assert iv.item_variance == pytest.approx(2 / 90) and iv.seed_variance == pytest.approx(0.01)
    total = 0.01 + 2 / 90
    df = total**2 / (0.01**2 / 1)
    assert iv.df == pytest.approx(df)
    assert iv.high - iv.value == pytest.approx(t_quantile(0.975, df) * math.sqrt(total))


def test_accuracy_interval_needs_the_checkpoint():
    with pytest.raises(InputError, match="no checkpoint at 5e\\+06"):
        accuracy_interval([run("raw", "1", (0.1, 0.2, 0.3))], 5e6)


def test_accuracy_difference_paired_and_unpaired():
    a = [run("tpt", s, (x,), tokens=(1e6,)) for s, x in (("1", 0.7), ("2", 0.9))]
    b = [run("raw", s, (x,), tokens=(1e6,)) for s, x in (("1", 0.3), ("2", 0.4))]
    paired = accuracy_difference(a, b, 1e6)
    assert paired.value == pytest.approx(0.45) and "paired by id" in paired.method
    assert paired.per_seed == {"1": pytest.approx(0.4), "2": pytest.approx(0.5)}
    assert verdict(paired, 0.0) == "gain"
    unpaired = accuracy_difference(a, [b[0]], 1e6)
    assert unpaired.value == pytest.approx(0.5) and "borrows" in unpaired.method
    same = accuracy_difference(b, b, 1e6)
    assert same.value == 0.0 and verdict(same, 0.0) == "no measurable effect"


def test_verdicts():
    def iv(lo, hi):
        return Interval(
            value=(lo + hi) / 2, low=lo, high=hi, confidence=0.95, n_seeds=2, n_items=10, method=""
        )

    assert verdict(iv(1.1, 2.0), 1.0) == "gain"
    assert verdict(iv(0.5, 0.9), 1.0) == "loss"
    assert verdict(iv(0.9, 1.2), 1.0) == "no measurable effect"
    assert verdict(iv(1.0, 1.0), 1.0) == "no measurable effect"
    assert verdict(iv(-0.1, 0.2), 0.0) == "no measurable effect"


# --- curves and checkpoints -----------------------------------------------------------------------------


def test_curve_mean_over_runs_and_on_resampled_items():
    a, b = run("raw", "1", (0.1, 0.3, 0.5)), run("raw", "2", (0.3, 0.5, 0.7))
    assert curve([a, b]) == [(1e5, pytest.approx(0.2)), (1e6, pytest.approx(0.4)), (1e7, pytest.approx(0.6))]
    # items 0 and 0 again and 9: run a has item 0 right from 1e5 (0.1 -> 1 item), item 9 never
    assert curve([a], items=[0, 0, 9])[0] == (1e5, pytest.approx(2 / 3))


def test_common_tokens():
    a = run("raw", "1", (0.1, 0.3, 0.5))
    b = run("raw", "2", (0.1, 0.3), tokens=(1e6, 1e7))
    assert common_tokens([a, b]) == (1e6, 1e7)
    with pytest.raises(InputError, match="no checkpoint token count in common"):
        common_tokens([a, run("raw", "3", (0.1,), tokens=(5.0,))])


def test_informative_checkpoints_drop_leading_zeros_but_keep_the_anchor():
    toks = (1e4, 1e5, 1e6, 1e7, 1e8)
    a = run("raw", "1", (0.0, 0.0, 0.0, 0.3, 0.5), tokens=toks)
    b = run("tpt", "1", (0.0, 0.0, 0.0, 0.4, 0.2), tokens=toks)
    keep = informative_checkpoints([a, b])
    assert keep == [2, 3, 4]  # 1e6 anchors the crossings
    kept = [toks[k] for k in keep]
    assert efficiency_factor(a.select(kept), b.select(kept), 0.5) == efficiency_factor(a, b, 0.5)
    zeros = run("raw", "1", (0.0, 0.0, 0.0))
    assert informative_checkpoints([zeros]) == [0, 1, 2]


def test_seed_run_validation():
    with pytest.raises(InputError, match="increasing"):
        SeedRun("a", "1", (1e6, 1e5), ((True,), (False,)))
    with pytest.raises(InputError, match="rows of results"):
        SeedRun("a", "1", (1e5,), ((True,), (False,)))
    with pytest.raises(InputError, match="same, non-zero number"):
        SeedRun("a", "1", (1e5, 1e6), ((True,), (False, True)))
    with pytest.raises(InputError, match="levels"):
        SeedRun("a", "1", (1e5,), ((True, False),), ("x",))


def test_t_quantiles_match_tables():
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(0.975, 4) == pytest.approx(2.776, abs=1e-3)
    assert t_quantile(0.975, 30) == pytest.approx(2.042, abs=1e-3)
    assert t_quantile(0.025, 9) == pytest.approx(-2.262, abs=1e-3)
    assert t_quantile(0.975, None) == pytest.approx(1.960, abs=1e-3)


def test_informative_checkpoints_keep_a_later_collapse():
    toks = (1e4, 1e5, 1e6, 1e7)
    a = run("raw", "1", (0.0, 0.3, 0.0, 0.5), tokens=toks)
    assert informative_checkpoints([a, run("tpt", "1", (0.0, 0.2, 0.0, 0.1), tokens=toks)]) == [0, 1, 2, 3]
