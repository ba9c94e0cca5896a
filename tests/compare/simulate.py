"""Simulated evaluated runs for the estimator tests: a known accuracy process over training tokens.

Item i is right at t tokens with probability sigmoid(slope * (ln t - ln t0 + shift + seed_effect) - d_i):
`shift = ln k` makes an arm that at t tokens is the baseline at k * t tokens (true factor k). Difficulties
d_i are drawn once per test set and shared by every run; each seed has its own effect and coin flips.
"""

from __future__ import annotations

import math

import numpy as np

from tpt.compare.estimator import SeedRun

GRID = tuple(float(round(1e5 * 10 ** (k / 6))) for k in range(13))  # 1e5 .. 1e7, geometric


def difficulties(rng: np.random.Generator, n_items: int) -> np.ndarray:
    return rng.normal(0.0, 1.0, n_items)


def simulate(
    rng: np.random.Generator,
    arm: str,
    seeds: list[str],
    d: np.ndarray,
    *,
    factor: float = 1.0,
    seed_sd: float = 0.15,
    slope: float = 1.2,
    grid: tuple[float, ...] = GRID,
    levels: tuple[str, ...] | None = None,
) -> list[SeedRun]:
    runs = []
    for s in seeds:
        effect = rng.normal(0.0, seed_sd)
        rows = []
        for t in grid:
            logit = slope * (math.log(t) - math.log(1e6) + math.log(factor) + effect) - d
            p = 1.0 / (1.0 + np.exp(-logit))
            rows.append(tuple(bool(x) for x in rng.random(len(d)) < p))
        runs.append(SeedRun(arm, s, grid, tuple(rows), levels))
    return runs


def calibration(reps: int, n_items: int, seeds: int, factor: float, n_boot: int) -> dict[str, float]:
    """Share of simulations whose interval contains the true factor, share called "gain", median width."""
    from tpt.compare.estimator import factor_interval, verdict

    covered = gains = 0
    widths = []
    for r in range(reps):
        rng = np.random.default_rng(10_000 + r)
        d = difficulties(rng, n_items)
        names = [str(s) for s in range(seeds)]
        iv = factor_interval(simulate(rng, "raw", names, d), simulate(rng, "arm", names, d, factor=factor),
                             n_boot=n_boot, seed=r)  # fmt: skip
        covered += iv.includes(factor)
        gains += verdict(iv, 1.0) == "gain"
        widths.append(iv.high / iv.low)
    return {
        "coverage": covered / reps,
        "gain": gains / reps,
        "median_high_over_low": float(np.median(widths)),
    }


if __name__ == "__main__":  # the calibration table of docs/compare.md
    print("true factor | seeds | items | coverage | called gain | median high/low")
    for factor, seeds in ((1.0, 1), (1.0, 3), (1.0, 5), (2.0, 3), (2.0, 5), (1.5, 5)):
        c = calibration(reps=100, n_items=200, seeds=seeds, factor=factor, n_boot=300)
        print(
            f"{factor} | {seeds} | 200 | {c['coverage']:.2f} | {c['gain']:.2f} | {c['median_high_over_low']:.2f}"
        )
