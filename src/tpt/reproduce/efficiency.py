"""Accuracy curves over training tokens, and where a curve first reaches a target accuracy.

"Reaches" is the first crossing of the target, interpolated linearly in log(tokens) between the checkpoint
below and the one at or above it (the curves are sampled geometrically). `tpt reproduce` applies it to
monotone fits of the measured curves (`stats.py`), never to a noisy curve itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tpt.core.errors import InputError


@dataclass(frozen=True, kw_only=True, slots=True)
class Curve:
    """Accuracy at increasing numbers of training tokens."""

    tokens: tuple[int, ...]
    accuracy: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.tokens or len(self.tokens) != len(self.accuracy):
            raise InputError("a curve needs as many accuracies as checkpoints, and at least one")
        if any(t <= 0 for t in self.tokens) or list(self.tokens) != sorted(set(self.tokens)):
            raise InputError(f"curve checkpoints must be positive and strictly increasing: {self.tokens}")

    def until(self, max_tokens: int) -> Curve:
        """The curve as if training had stopped at `max_tokens`."""
        keep = [i for i, t in enumerate(self.tokens) if t <= max_tokens]
        if not keep:
            raise InputError(f"no checkpoint at or below {max_tokens} tokens")
        return Curve(
            tokens=tuple(self.tokens[i] for i in keep),
            accuracy=tuple(self.accuracy[i] for i in keep),
        )


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
