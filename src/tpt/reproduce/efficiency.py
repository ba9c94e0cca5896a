"""The data-efficiency factor, computed as the paper does: tokens the raw arm needed to reach its final
accuracy, divided by the tokens the TPT arm needed to reach that same accuracy.

"Needed to reach" is read off a curve of (training tokens, accuracy) checkpoints as the first crossing of
the target, interpolated linearly in log(tokens) between the checkpoint below and the one at or above it
(the curves are sampled geometrically). The same rule is applied to both arms, so a raw curve that touched
its final accuracy before the end counts those fewer tokens. A TPT arm that never reaches the target within
its budget has no factor; the factor is then below raw_tokens / tpt_budget, which is recorded as a bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from tpt.errors import InputError


@dataclass(frozen=True, kw_only=True, slots=True)
class Curve:
    """Accuracy at increasing numbers of training tokens."""

    tokens: tuple[int, ...]
    accuracy: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.tokens or len(self.tokens) != len(self.accuracy):
            raise InputError("a curve needs as many accuracies as checkpoints, and at least one")
        if any(t <= 0 for t in self.tokens) or list(self.tokens) != sorted(set(self.tokens)):
            raise InputError(
                f"curve checkpoints must be positive and strictly increasing: {self.tokens}"
            )

    def until(self, max_tokens: int) -> Curve:
        """The curve as if training had stopped at `max_tokens`."""
        keep = [i for i, t in enumerate(self.tokens) if t <= max_tokens]
        if not keep:
            raise InputError(f"no checkpoint at or below {max_tokens} tokens")
        return Curve(
            tokens=tuple(self.tokens[i] for i in keep),
            accuracy=tuple(self.accuracy[i] for i in keep),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Efficiency:
    """The factor for one pair of arms, with the numbers it comes from."""

    target_accuracy: float
    """The raw arm's final accuracy."""
    raw_tokens: float
    """Tokens the raw arm needed to first reach the target."""
    tpt_tokens: float | None
    """Tokens the TPT arm needed to reach it; None when it never did."""
    factor: float | None
    factor_upper_bound: float | None
    """When the TPT arm never reached the target: raw_tokens / TPT budget (the factor is below this)."""
    stop_tokens: int
    """The budget the curves were cut at."""

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "target_accuracy": self.target_accuracy,
            "raw_tokens": self.raw_tokens,
            "tpt_tokens": self.tpt_tokens,
            "factor": self.factor,
            "factor_upper_bound": self.factor_upper_bound,
            "stop_tokens": self.stop_tokens,
        }


def tokens_to_reach(curve: Curve, target: float) -> float | None:
    """First crossing of `target`, log-linear between checkpoints; None if never reached.

    Example: tokens (1e5, 1e6), accuracy (0.2, 0.6), target 0.4 -> halfway in log tokens -> 3.16e5.
    A curve at or above the target at its first checkpoint gives that checkpoint's tokens.
    """
    for i, (t, acc) in enumerate(zip(curve.tokens, curve.accuracy, strict=True)):
        if acc >= target:
            if i == 0 or acc == target:
                return float(t)
            t0, a0 = curve.tokens[i - 1], curve.accuracy[i - 1]
            frac = (target - a0) / (acc - a0)
            return math.exp(math.log(t0) + frac * (math.log(t) - math.log(t0)))
    return None


def data_efficiency(raw: Curve, tpt: Curve, *, stop_tokens: int | None = None) -> Efficiency:
    """The factor for curves cut at `stop_tokens` (default: the last checkpoint common to both)."""
    stop = stop_tokens if stop_tokens is not None else min(raw.tokens[-1], tpt.tokens[-1])
    raw, tpt = raw.until(stop), tpt.until(stop)
    target = raw.accuracy[-1]
    raw_tokens = tokens_to_reach(raw, target)
    assert (
        raw_tokens is not None
    )  # the raw curve reaches its own final value at the latest at its end
    tpt_tokens = tokens_to_reach(tpt, target)
    return Efficiency(
        target_accuracy=target,
        raw_tokens=raw_tokens,
        tpt_tokens=tpt_tokens,
        factor=raw_tokens / tpt_tokens if tpt_tokens else None,
        factor_upper_bound=None if tpt_tokens else raw_tokens / tpt.tokens[-1],
        stop_tokens=stop,
    )


def mean_factor(results: Sequence[Efficiency]) -> tuple[float | None, bool]:
    """Mean over seeds, and whether it is only an upper bound (some TPT arm never reached its target)."""
    if not results:
        return None, False
    values = [r.factor if r.factor is not None else r.factor_upper_bound for r in results]
    return sum(v for v in values if v is not None) / len(values), any(
        r.factor is None for r in results
    )
