"""The data-efficiency estimator: one implementation for `tpt compare` and `tpt reproduce`.

Inputs are per-item results: a `SeedRun` is one trained run (one arm, one seed) whose checkpoints were scored
on the same test items, in the same order, as every other run of the comparison.

The factor of an arm against the baseline (issue 23, item 4):

    factor = T_baseline(A) / T_arm(A),   A = the baseline's final mean accuracy (over its seeds)

where T_run(L) is the first crossing of level L by the run's accuracy curve, interpolated linearly in
log(tokens) between the checkpoint below L and the first one at or above it (`tokens_to_reach`). A run that
never reaches A is never given a bound averaged in as if it were a crossing; `efficiency_factor` documents
the rule that replaces it (the arm is compared at the level it did reach, charged its whole budget).

The interval of the factor combines two sources of noise, both on the log factor:

- seeds: the per-seed log factors (a baseline and an arm run of the same seed id are paired) give a mean
  `m` and a variance of that mean `s^2 / n` (n pairs);
- test items: B bootstrap replicates resample the test items with replacement within each level (stratum),
  the same draw for every run, and recompute A, every per-seed factor and `m`; their variance is `v_item`.

The two are added, `V = s^2 / n + v_item` (the items are shared by all seeds, so item noise is common to the
seeds and the seed variance does not contain it; the item bootstrap of the seed mean also contains a small
seed-by-item part that `s^2 / n` already holds, so the sum errs on the wide side). The interval is
`exp(m +- q * sqrt(V))` with q the Student t quantile at the Welch-Satterthwaite degrees of freedom
`V^2 / ((s^2/n)^2 / (n - 1))` (the bootstrap term counted as known exactly). With one seed there is no seed
variance: the interval is the item bootstrap alone (normal quantile), and `Interval.method` says so.

Accuracies and differences of accuracy use the same combination on the identity scale, with the item
variance computed exactly (the stratified variance of the per-item mean over seeds) instead of by bootstrap.

Pure Python + numpy; nothing here imports torch or matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from tpt.compare.tdist import t_quantile
from tpt.core.errors import InputError
from tpt.core.jsontypes import JSONObject

TIE = 1e-9
"""Accuracies closer than this are equal (a mean over seeds and the same mean taken another way)."""


@dataclass(frozen=True, slots=True)
class SeedRun:
    """One trained run: `correct[k][i]` is whether test item i was right at checkpoint k (`tokens[k]`).

    Item order is identical across the runs of one comparison; `levels[i]` is item i's stratum (a difficulty
    level, a subtask), used to stratify the item bootstrap.
    """

    arm: str
    seed: str
    tokens: tuple[float, ...]
    correct: tuple[tuple[bool | float, ...], ...]
    """Whether each item was right; with several samples per item, the share of them right (0..1)."""
    levels: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        where = f"run {self.arm!r} seed {self.seed!r}"
        if not self.tokens:
            raise InputError(f"{where}: no checkpoints")
        if any(not t > 0 for t in self.tokens) or any(
            b <= a for a, b in zip(self.tokens, self.tokens[1:], strict=False)
        ):
            raise InputError(
                f"{where}: checkpoint token counts must be positive and increasing: {self.tokens}"
            )
        if len(self.correct) != len(self.tokens):
            raise InputError(
                f"{where}: {len(self.tokens)} checkpoints but {len(self.correct)} rows of results"
            )
        n = len(self.correct[0])
        if n == 0 or any(len(row) != n for row in self.correct):
            raise InputError(
                f"{where}: every checkpoint needs results for the same, non-zero number of items"
            )
        if self.levels is not None and len(self.levels) != n:
            raise InputError(f"{where}: {len(self.levels)} levels for {n} items")

    @property
    def n_items(self) -> int:
        return len(self.correct[0])

    def accuracy(self) -> list[float]:
        """Accuracy at each checkpoint."""
        return [sum(row) / len(row) for row in self.correct]

    def select(self, tokens: Sequence[float]) -> SeedRun:
        """The run restricted to the checkpoints at `tokens` (each must be one of its checkpoints)."""
        index = {t: k for k, t in enumerate(self.tokens)}
        missing = [t for t in tokens if t not in index]
        if missing:
            raise InputError(f"run {self.arm!r} seed {self.seed!r}: no checkpoint at {missing[0]:g} tokens")
        ks = [index[t] for t in tokens]
        return SeedRun(self.arm, self.seed, tuple(self.tokens[k] for k in ks),
                       tuple(self.correct[k] for k in ks), self.levels)  # fmt: skip


@dataclass(frozen=True, kw_only=True, slots=True)
class Interval:
    """A point estimate with its interval (see the module docstring for how it is made)."""

    value: float
    low: float
    high: float
    confidence: float
    n_seeds: int
    """Seeds (for a factor or a paired difference: seed pairs) the estimate averages."""
    n_items: int
    method: str
    """How the interval was made, in words (paired or not, seeds used, which variance terms)."""
    seed_variance: float | None = None
    """Variance of the estimate from seeds (log scale for factors); None with one seed."""
    item_variance: float = 0.0
    """Variance of the estimate from test items (log scale for factors)."""
    df: float | None = None
    """Degrees of freedom of the t quantile; None when the normal quantile was used."""
    per_seed: dict[str, float] = field(default_factory=dict)
    """The estimate of each seed (pair), keyed by seed id ("baseline-seed/arm-seed" when unpaired)."""

    def includes(self, x: float) -> bool:
        return self.low <= x <= self.high

    def to_json(self) -> JSONObject:
        return {
            "value": self.value,
            "ci": [self.low, self.high],
            "confidence": self.confidence,
            "n_seeds": self.n_seeds,
            "n_items": self.n_items,
            "method": self.method,
            "seed_variance": self.seed_variance,
            "item_variance": self.item_variance,
            "df": self.df,
            "per_seed": dict(self.per_seed),
        }


# --- curves ---------------------------------------------------------------------------------------------


def common_tokens(runs: Sequence[SeedRun]) -> tuple[float, ...]:
    """The checkpoint token counts every run has, increasing; an InputError if there is none."""
    if not runs:
        raise InputError("no runs given")
    shared = set(runs[0].tokens)
    for r in runs[1:]:
        shared &= set(r.tokens)
    if not shared:
        names = ", ".join(f"{r.arm}/{r.seed}" for r in runs)
        raise InputError(f"runs {names} have no checkpoint token count in common")
    return tuple(sorted(shared))


def _check_items(runs: Sequence[SeedRun]) -> None:
    first = runs[0]
    for r in runs[1:]:
        if r.n_items != first.n_items:
            raise InputError(
                f"runs {first.arm}/{first.seed} and {r.arm}/{r.seed} were scored on different numbers of items "
                f"({first.n_items} vs {r.n_items})"
            )
        if r.levels != first.levels:
            raise InputError(
                f"runs {first.arm}/{first.seed} and {r.arm}/{r.seed} give their items different levels"
            )


def _run_accuracy(run: SeedRun, tokens: Sequence[float], items: Sequence[int] | None) -> list[float]:
    index = {t: k for k, t in enumerate(run.tokens)}
    out = []
    for t in tokens:
        row = run.correct[index[t]]
        if items is None:
            out.append(sum(row) / len(row))
        else:
            out.append(sum(row[i] for i in items) / len(items))
    return out


def curve(runs: Sequence[SeedRun], items: Sequence[int] | None = None) -> list[tuple[float, float]]:
    """Mean accuracy over `runs` at each token count they all have, as (tokens, accuracy) points.

    `items` (a list of item indices, repeats allowed: a bootstrap draw) scores each run on those items.
    """
    tokens = common_tokens(runs)
    if items is not None and not items:
        raise InputError("curve: an empty item list")
    accs = [_run_accuracy(r, tokens, items) for r in runs]
    return [(t, sum(a[k] for a in accs) / len(accs)) for k, t in enumerate(tokens)]


def tokens_to_reach(points: Sequence[tuple[float, float]], level: float) -> float | None:
    """Tokens at which the curve first reaches `level`; None if it never does.

    The first checkpoint at or above the level is found; the crossing is interpolated linearly in
    log(tokens) between it and the checkpoint before. A curve at or above the level at its first checkpoint
    gives that checkpoint; a checkpoint equal to the level (within TIE) gives that checkpoint exactly; on a
    plateau at the level the first point of the plateau counts.
    Example: (1e5, 0.2), (1e6, 0.6), level 0.4 -> halfway in log tokens -> 3.16e5.
    """
    prev: tuple[float, float] | None = None
    for t, acc in points:
        if acc >= level - TIE:
            if prev is None or abs(acc - level) <= TIE:
                return float(t)
            t0, a0 = prev
            frac = (level - a0) / (acc - a0)
            return math.exp(math.log(t0) + frac * (math.log(t) - math.log(t0)))
        prev = (t, acc)
    return None


def _factor_from_points(
    base: list[tuple[float, float]], arm: list[tuple[float, float]], target: float
) -> float:
    tb, ta = tokens_to_reach(base, target), tokens_to_reach(arm, target)
    (b_budget, b_final), (a_budget, a_final) = base[-1], arm[-1]
    if tb is not None and ta is not None:
        return tb / ta
    arm_behind = (tb is not None) or (ta is None and a_final < b_final - TIE)
    base_behind = (ta is not None) or (tb is None and b_final < a_final - TIE)
    if arm_behind:
        reach = tokens_to_reach(base, a_final)
        assert reach is not None  # the baseline got above a_final, so it crossed it
        return reach / a_budget
    if base_behind:
        reach = tokens_to_reach(arm, b_final)
        assert reach is not None
        return b_budget / reach
    return b_budget / a_budget  # neither reached the target, and both ended at the same accuracy


def efficiency_factor(
    baseline: SeedRun, arm: SeedRun, target: float, *, items: Sequence[int] | None = None
) -> float:
    """How many times fewer training tokens `arm` needs than `baseline` to reach accuracy `target`.

    Each run's own checkpoints are used; its budget is its last checkpoint.
    - Both reach `target`: T_baseline(target) / T_arm(target).
    - The arm never reaches it (the baseline does): T_baseline(arm's final accuracy) / arm's budget. The arm
      is compared at the level it did reach and charged its whole budget: a factor <= 1 at equal budgets,
      the measured shortfall, never a bound standing in for a crossing.
    - The baseline never reaches it (the arm does): the mirror image, baseline's budget / T_arm(baseline's
      final accuracy), a factor >= 1 at equal budgets.
    - Neither reaches it: the run that ended lower is the one compared at its final level, as above; equal
      final accuracies give baseline's budget / arm's budget.
    `items` scores both runs on those item indices (a bootstrap draw) instead of all items.
    """
    _check_items([baseline, arm])
    base = list(zip(baseline.tokens, _run_accuracy(baseline, baseline.tokens, items), strict=True))
    other = list(zip(arm.tokens, _run_accuracy(arm, arm.tokens, items), strict=True))
    return _factor_from_points(base, other, target)


# --- intervals ------------------------------------------------------------------------------------------


def _combine(
    seed_var: float | None, seed_df: float | None, item_var: float, confidence: float
) -> tuple[float, float | None]:
    """Half-width of the interval and the t degrees of freedom (None: normal), from the two variance terms.

    Welch-Satterthwaite with the item term counted as known exactly: df = V^2 / (seed_var^2 / seed_df).
    """
    total = (seed_var or 0.0) + item_var
    if total <= 0.0:
        return 0.0, seed_df
    df = None if not seed_var or seed_df is None else total**2 / (seed_var**2 / seed_df)
    q = t_quantile(1.0 - (1.0 - confidence) / 2.0, df)
    return q * math.sqrt(total), df


def _strata(levels: tuple[str, ...] | None, n_items: int) -> list[np.ndarray]:
    if levels is None:
        return [np.arange(n_items)]
    groups: dict[str, list[int]] = {}
    for i, lv in enumerate(levels):
        groups.setdefault(lv, []).append(i)
    return [np.asarray(groups[k]) for k in sorted(groups)]


def _boot_weights(
    strata: list[np.ndarray], n_items: int, n_boot: int, rng: np.random.Generator
) -> np.ndarray:
    """(n_boot, n_items) draw counts: each stratum's items drawn with replacement, as many as it has."""
    rows = np.arange(n_boot)[:, None] * n_items
    flat = [(rows + idx[rng.integers(0, len(idx), size=(n_boot, len(idx)))]).ravel() for idx in strata]
    counts = np.bincount(np.concatenate(flat), minlength=n_boot * n_items)
    return counts.reshape(n_boot, n_items).astype(float)


def _pairs(
    baseline_runs: Sequence[SeedRun], arm_runs: Sequence[SeedRun]
) -> tuple[list[tuple[SeedRun, SeedRun]], str]:
    by_b = {r.seed: r for r in baseline_runs}
    by_a = {r.seed: r for r in arm_runs}
    for runs, by in ((baseline_runs, by_b), (arm_runs, by_a)):
        if len(by) != len(runs):
            raise InputError(f"arm {runs[0].arm!r} has two runs with the same seed id")
    shared = sorted(set(by_b) & set(by_a))
    if shared:
        pairs = [(by_b[s], by_a[s]) for s in shared]
        left = sorted(set(by_b) ^ set(by_a))
        how = f"seeds paired by id ({len(shared)})"
        if left:
            how += f"; unpaired seeds left out: {', '.join(left)}"
        return pairs, how
    bs, as_ = sorted(by_b), sorted(by_a)
    n = min(len(bs), len(as_))
    pairs = [(by_b[bs[k]], by_a[as_[k]]) for k in range(n)]
    how = f"no seed id in common: seeds paired in sorted order ({n})"
    left = bs[n:] + as_[n:]
    if left:
        how += f"; left out: {', '.join(left)}"
    return pairs, how


def factor_interval(
    baseline_runs: Sequence[SeedRun],
    arm_runs: Sequence[SeedRun],
    *,
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """The arm's data-efficiency factor against the baseline, with its interval (module docstring).

    Target A = the baseline's mean accuracy over its seeds at the last checkpoint they share. Per seed pair
    the factor is `efficiency_factor(baseline, arm, A)`; the estimate is their geometric mean.
    """
    if not baseline_runs or not arm_runs:
        raise InputError("factor_interval needs at least one baseline run and one arm run")
    runs = list(baseline_runs) + list(arm_runs)
    _check_items(runs)
    pairs, how = _pairs(baseline_runs, arm_runs)
    n_items = runs[0].n_items
    base_tokens = common_tokens(baseline_runs)

    mats = {id(r): np.asarray(r.correct, dtype=float) for r in runs}

    def logs_for(acc: dict[int, np.ndarray]) -> list[float]:
        """Per-pair log factors given each run's accuracy per checkpoint."""
        base_final = []
        for r in baseline_runs:
            k = r.tokens.index(base_tokens[-1])
            base_final.append(acc[id(r)][k])
        target = float(np.mean(base_final))
        out = []
        for b, a in pairs:
            bp = list(zip(b.tokens, acc[id(b)].tolist(), strict=True))
            ap = list(zip(a.tokens, acc[id(a)].tolist(), strict=True))
            out.append(math.log(_factor_from_points(bp, ap, target)))
        return out

    point = logs_for({k: m.mean(axis=1) for k, m in mats.items()})
    m = float(np.mean(point))

    rng = np.random.default_rng(seed)
    strata = _strata(runs[0].levels, n_items)
    stacked = np.ascontiguousarray(np.concatenate([mats[id(r)] for r in runs]).T)  # (items, checkpoints)
    spans, at = {}, 0
    for r in runs:
        spans[id(r)] = (at, at + len(r.tokens))
        at += len(r.tokens)
    reps_list: list[float] = []
    chunk = max(1, min(n_boot, 2_000_000 // n_items))  # replicates per block: ~16 MB of weights at most
    for start in range(0, n_boot, chunk):
        weights = _boot_weights(strata, n_items, min(chunk, n_boot - start), rng)
        acc = (weights @ stacked) / n_items  # (block, all runs' checkpoints side by side)
        per_run = {k: acc[:, a:b] for k, (a, b) in spans.items()}
        reps_list += [
            float(np.mean(logs_for({k: v[j] for k, v in per_run.items()}))) for j in range(len(weights))
        ]
    reps = np.asarray(reps_list)
    item_var = float(np.var(reps, ddof=1)) if n_boot > 1 else 0.0

    n = len(pairs)
    if n >= 2:
        seed_var: float | None = float(np.var(point, ddof=1)) / n
        seed_df: float | None = n - 1.0
        how += "; t over seeds on the log factor + stratified item bootstrap variance"
    else:
        seed_var, seed_df = None, None
        how += "; one seed: item bootstrap only (no seed variance), normal quantile"
    how += f" ({n_boot} replicates, {len(_strata(runs[0].levels, n_items))} strata)"
    half, df = _combine(seed_var, seed_df, item_var, confidence)
    names = {
        f"{b.seed}" if b.seed == a.seed else f"{b.seed}/{a.seed}": math.exp(v)
        for (b, a), v in zip(pairs, point, strict=True)
    }
    return Interval(
        value=math.exp(m), low=math.exp(m - half), high=math.exp(m + half), confidence=confidence,
        n_seeds=n, n_items=n_items, method=how, seed_variance=seed_var, item_variance=item_var, df=df,
        per_seed=names,
    )  # fmt: skip


def _item_variance(per_item: np.ndarray, levels: tuple[str, ...] | None) -> float:
    """Variance of the mean of `per_item` from sampling items, stratified by level."""
    n = len(per_item)
    total = 0.0
    for idx in _strata(levels, n):
        if len(idx) > 1:
            total += (len(idx) / n) ** 2 * float(np.var(per_item[idx], ddof=1)) / len(idx)
    return total


def _at(runs: Sequence[SeedRun], tokens: float) -> np.ndarray:
    """(runs, items) correctness of each run at its checkpoint `tokens`."""
    rows = []
    for r in runs:
        if tokens not in r.tokens:
            raise InputError(
                f"run {r.arm}/{r.seed} has no checkpoint at {tokens:g} tokens (it has {list(r.tokens)})"
            )
        rows.append(r.correct[r.tokens.index(tokens)])
    return np.asarray(rows, dtype=float)


def accuracy_interval(runs: Sequence[SeedRun], tokens: float, *, confidence: float = 0.95) -> Interval:
    """Mean accuracy over `runs` at the checkpoint `tokens` (each run must have it), with its interval."""
    if not runs:
        raise InputError("accuracy_interval needs at least one run")
    _check_items(runs)
    mat = _at(runs, tokens)
    per_run = mat.mean(axis=1)
    value = float(per_run.mean())
    item_var = _item_variance(mat.mean(axis=0), runs[0].levels)
    n = len(runs)
    if n >= 2:
        seed_var: float | None = float(np.var(per_run, ddof=1)) / n
        seed_df: float | None = n - 1.0
        how = f"t over {n} seeds + stratified item variance"
    else:
        seed_var, seed_df, how = None, None, "one seed: item variance only, normal quantile"
    half, df = _combine(seed_var, seed_df, item_var, confidence)
    return Interval(
        value=value, low=max(0.0, value - half), high=min(1.0, value + half), confidence=confidence, n_seeds=n,
        n_items=runs[0].n_items, method=how, seed_variance=seed_var, item_variance=item_var, df=df,
        per_seed={r.seed: float(a) for r, a in zip(runs, per_run, strict=True)},
    )  # fmt: skip


def accuracy_difference(
    runs_a: Sequence[SeedRun], runs_b: Sequence[SeedRun], tokens: float, *, confidence: float = 0.95
) -> Interval:
    """Accuracy of `runs_a` minus accuracy of `runs_b` at the checkpoint `tokens`, with its interval.

    Seeds are paired when both sides have the same seed ids (variance of the per-seed differences);
    otherwise the two sides are independent samples (Welch), and a side with one seed borrows the other
    side's seed variance (equal variances assumed; `method` says so).
    """
    if not runs_a or not runs_b:
        raise InputError("accuracy_difference needs runs on both sides")
    _check_items(list(runs_a) + list(runs_b))
    ma, mb = _at(runs_a, tokens), _at(runs_b, tokens)
    pa, pb = ma.mean(axis=1), mb.mean(axis=1)
    value = float(pa.mean() - pb.mean())
    item_var = _item_variance(ma.mean(axis=0) - mb.mean(axis=0), runs_a[0].levels)
    ids_a, ids_b = [r.seed for r in runs_a], [r.seed for r in runs_b]
    per_seed: dict[str, float] = {}
    seed_var: float | None
    seed_df: float | None
    if sorted(ids_a) == sorted(ids_b) and len(set(ids_a)) == len(ids_a):
        order_b = {s: k for k, s in enumerate(ids_b)}
        d = np.array([pa[k] - pb[order_b[s]] for k, s in enumerate(ids_a)])
        per_seed = {s: float(d[k]) for k, s in enumerate(ids_a)}
        n = len(d)
        if n >= 2:
            seed_var, seed_df = float(np.var(d, ddof=1)) / n, n - 1.0
            how = f"seeds paired by id ({n}): t over per-seed differences + stratified item variance"
        else:
            seed_var, seed_df = None, None
            how = "one seed pair: item variance only, normal quantile"
    else:
        na, nb = len(pa), len(pb)
        n = min(na, nb)
        va = float(np.var(pa, ddof=1)) if na >= 2 else None
        vb = float(np.var(pb, ddof=1)) if nb >= 2 else None
        if va is not None and vb is not None:
            seed_var = va / na + vb / nb
            seed_df = (
                seed_var**2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1)) if seed_var else None
            )
            how = f"unpaired seeds ({na} vs {nb}): Welch t + stratified item variance"
        elif va is not None or vb is not None:
            v = va if va is not None else vb
            assert v is not None
            seed_var = v * (1 / na + 1 / nb)
            seed_df = float((na if va is not None else nb) - 1)
            how = f"unpaired seeds ({na} vs {nb}): the one-seed side borrows the other's seed variance; t + item variance"
        else:
            seed_var, seed_df = None, None
            how = "one seed on each side (unpaired): item variance only, normal quantile"
    half, df = _combine(seed_var, seed_df, item_var, confidence)
    return Interval(
        value=value, low=max(-1.0, value - half), high=min(1.0, value + half), confidence=confidence, n_seeds=n,
        n_items=runs_a[0].n_items, method=how, seed_variance=seed_var, item_variance=item_var, df=df,
        per_seed=per_seed,
    )  # fmt: skip


def verdict(interval: Interval, null: float) -> str:
    """ "gain" (interval above `null`), "loss" (below) or "no measurable effect" (it includes `null`).

    `null` is 1.0 for factors and 0.0 for differences of accuracy.
    """
    if interval.low > null:
        return "gain"
    if interval.high < null:
        return "loss"
    return "no measurable effect"


def informative_checkpoints(all_runs: Sequence[SeedRun]) -> list[int]:
    """Indices into `common_tokens(all_runs)` (each run's own indices when all share one grid) to keep.

    Drops the leading checkpoints at which every run of every arm has accuracy 0.0, except the last of
    them: it is the point a first crossing interpolates from, so keeping it leaves every factor at a target
    above 0 unchanged. An all-zero checkpoint after a non-zero one is data (a collapse) and is kept; when
    every checkpoint is all-zero, all are kept.
    """
    tokens = common_tokens(all_runs)
    zero = [all(_run_accuracy(r, [t], None)[0] == 0.0 for r in all_runs) for t in tokens]
    first = next((k for k, z in enumerate(zero) if not z), None)
    if first is None:
        return list(range(len(tokens)))
    return list(range(max(0, first - 1), len(tokens)))
