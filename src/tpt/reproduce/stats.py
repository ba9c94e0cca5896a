"""The statistics of `tpt reproduce`: a monotone fit of accuracy against training tokens, the data-efficiency
factor read off the fits, the geometric mean over seeds, and bootstrap intervals over test problems and seeds.

Why a monotone fit: a checkpoint curve of a small student is noisy (a point can dip by several points and
recover), and the first crossing of a noisy curve moves a lot with one checkpoint. Accuracy is fitted by
isotonic (non-decreasing) regression over the checkpoints, which are sampled geometrically, so the fit is
monotone in log tokens; between checkpoints the fit is interpolated linearly in log tokens.

The factor, as the paper defines it: T_raw / T_arm, where T_raw is the number of tokens at which the raw
arm's fitted curve reaches its own final fitted accuracy, and T_arm the number at which the arm's fitted
curve first reaches that same accuracy. An arm that never reaches it within its budget has a factor below
T_raw / budget; that bound is used in its place and flagged (it is at most 1, so it never inflates a gain).

Intervals: the percentile interval of B bootstrap replicates. Each replicate resamples the seeds (a raw
run and an arm run of the same seed stay paired) and the test problems, clustered by computation (a test
problem's type and operands: two problems that differ only in their names are not independent evidence),
with replacement, and recomputes every curve, fit and factor from the per-problem results.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tpt.core.errors import InputError
from tpt.reproduce.efficiency import Curve, tokens_to_reach


def isotonic(values: Sequence[float], weights: Sequence[float] | None = None) -> list[float]:
    """Non-decreasing least-squares fit (pool adjacent violators).

    Example: [0.1, 0.3, 0.2, 0.5] -> [0.1, 0.25, 0.25, 0.5].
    """
    w = list(weights) if weights is not None else [1.0] * len(values)
    blocks: list[list[float]] = []  # [mean, weight, count]
    for v, wt in zip(values, w, strict=True):
        blocks.append([float(v), float(wt), 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, n2 = blocks.pop()
            m1, w1, n1 = blocks.pop()
            total = w1 + w2
            blocks.append([(m1 * w1 + m2 * w2) / total if total else (m1 + m2) / 2, total, n1 + n2])
    out: list[float] = []
    for m, _, n in blocks:
        out.extend([m] * n)
    return out


def fit(curve: Curve) -> Curve:
    """The monotone fit of a curve, at the same checkpoints."""
    return Curve(tokens=curve.tokens, accuracy=tuple(isotonic(curve.accuracy)))


@dataclass(frozen=True, kw_only=True, slots=True)
class Factor:
    """The data-efficiency factor of one arm against raw, for one seed (see the module docstring)."""

    value: float
    """T_raw / T_arm, or the bound T_raw / budget when the arm never reached the target."""
    reached: bool
    target: float
    raw_tokens: float
    arm_tokens: float | None


def factor(raw: Curve, arm: Curve) -> Factor:
    """The factor from two curves (fitted here), cut at the last checkpoint both have."""
    stop = min(raw.tokens[-1], arm.tokens[-1])
    raw_fit, arm_fit = fit(raw.until(stop)), fit(arm.until(stop))
    target = raw_fit.accuracy[-1]
    raw_tokens = tokens_to_reach(raw_fit, target)
    if raw_tokens is None:  # cannot happen: a fit reaches its own last value
        raise InputError("the raw curve's fit does not reach its own final value")
    arm_tokens = tokens_to_reach(arm_fit, target)
    if arm_tokens is None:
        return Factor(value=raw_tokens / arm_fit.tokens[-1], reached=False, target=target,
                      raw_tokens=raw_tokens, arm_tokens=None)  # fmt: skip
    return Factor(value=raw_tokens / arm_tokens, reached=True, target=target, raw_tokens=raw_tokens,
                  arm_tokens=arm_tokens)  # fmt: skip


def geometric_mean(values: Sequence[float]) -> float:
    if not values or min(values) <= 0:
        raise InputError(f"a geometric mean needs positive values, got {list(values)}")
    return math.exp(sum(math.log(v) for v in values) / len(values))


@dataclass(frozen=True, kw_only=True, slots=True)
class Results:
    """Per-problem outcomes of one arm and seed on one task: `correct[i][j]` at checkpoint i, problem j."""

    tokens: tuple[int, ...]
    correct: tuple[tuple[float, ...], ...]

    def curve(self, weights: Sequence[float] | None = None) -> Curve:
        """Accuracy per checkpoint, each problem counted with its weight (default 1)."""
        if weights is None:
            acc = tuple(sum(row) / len(row) for row in self.correct)
        else:
            total = sum(weights)
            acc = tuple(sum(c * w for c, w in zip(row, weights, strict=True)) / total for row in self.correct)
        return Curve(tokens=self.tokens, accuracy=acc)


@dataclass(frozen=True, kw_only=True, slots=True)
class Interval:
    value: float
    lo: float
    hi: float

    def includes(self, x: float) -> bool:
        return self.lo <= x <= self.hi

    def as_dict(self) -> dict[str, object]:
        return {"value": self.value, "ci": [self.lo, self.hi]}


def _percentiles(xs: list[float], level: float) -> tuple[float, float]:
    xs = sorted(xs)
    a = (1 - level) / 2

    def q(p: float) -> float:
        k = p * (len(xs) - 1)
        i = int(math.floor(k))
        j = min(i + 1, len(xs) - 1)
        return xs[i] + (xs[j] - xs[i]) * (k - i)

    return q(a), q(1 - a)


def cluster_weights(clusters: Sequence[str], rng) -> list[float]:
    """Bootstrap weights of problems: clusters drawn with replacement, each problem weighted by its
    cluster's draw count."""
    names = sorted(set(clusters))
    counts = dict.fromkeys(names, 0)
    for _ in names:
        counts[names[rng.randrange(len(names))]] += 1
    return [float(counts[c]) for c in clusters]


def bootstrap(
    raw: dict[int, Results],
    arm: dict[int, Results] | None,
    clusters: Sequence[str],
    *,
    replicates: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, object]:
    """Point estimates and intervals of the arm's final accuracy and, with `arm`, of its factor vs raw.

    `raw` and `arm` map a seed to its per-problem results; both must cover the same problems in the same
    order as `clusters`. Without `arm`, the statistics are of `raw` itself (its final accuracy).
    """
    import random

    target = arm if arm is not None else raw
    seeds = sorted(target)
    if not seeds or (arm is not None and sorted(raw) != seeds):
        raise InputError(f"bootstrap: seeds differ between the arms ({sorted(raw)} vs {seeds})")
    rng = random.Random(seed)

    def stats(ss: list[int], weights: list[float] | None) -> tuple[float, float | None]:
        final = sum(target[s].curve(weights).accuracy[-1] for s in ss) / len(ss)
        if arm is None:
            return final, None
        f = geometric_mean([factor(raw[s].curve(weights), arm[s].curve(weights)).value for s in ss])
        return final, f

    final0, factor0 = stats(seeds, None)
    finals, factors = [], []
    for _ in range(replicates):
        ss = [seeds[rng.randrange(len(seeds))] for _ in seeds]
        f, g = stats(ss, cluster_weights(clusters, rng))
        finals.append(f)
        if g is not None:
            factors.append(g)
    lo, hi = _percentiles(finals, level)
    out: dict[str, object] = {"final_accuracy": Interval(value=final0, lo=lo, hi=hi)}
    if arm is not None and factor0 is not None:
        lo, hi = _percentiles(factors, level)
        per_seed = {s: factor(raw[s].curve(), arm[s].curve()) for s in seeds}
        out["factor"] = Interval(value=factor0, lo=lo, hi=hi)
        out["per_seed"] = per_seed
    return out
