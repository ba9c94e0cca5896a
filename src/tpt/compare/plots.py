"""The per-task figure of `tpt compare` (matplotlib, headless, imported only when plotting).

Three panels: accuracy against training tokens (mean over seeds, band = range over seeds, one line per
arm); each arm's data-efficiency factor against the baseline with its interval (log axis, 1 marked);
every arm's accuracy at the largest token count all runs share, with its interval.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tpt.core.errors import MissingDependencyError
from tpt.core.jsontypes import JSONObject


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError(
            "matplotlib", "tpt compare's plots (or pass --no-plots)", extra="plot"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_task(task: str, entry: JSONObject, baseline: str, path: Path) -> Path:
    plt = _pyplot()
    arms = list(entry["arms"])
    colors = {arm: f"C{k % 10}" for k, arm in enumerate(arms)}
    fig, (ax_curve, ax_factor, ax_acc) = plt.subplots(1, 3, figsize=(16, 4.4))
    for arm in arms:
        c = entry["arms"][arm]["curve"]
        n = len(entry["arms"][arm]["seeds"])
        ax_curve.plot(c["tokens"], [100 * v for v in c["mean"]], "o-", color=colors[arm], ms=3,
                      label=f"{arm} ({n} seed{'s' if n != 1 else ''})")  # fmt: skip
        if n > 1:
            ax_curve.fill_between(c["tokens"], [100 * v for v in c["low"]], [100 * v for v in c["high"]],
                                  color=colors[arm], alpha=0.18, lw=0)  # fmt: skip
    ax_curve.axvline(entry["largest_common_tokens"], color="0.6", ls=":", lw=1)
    ax_curve.set(xscale="log", xlabel="training tokens", ylabel=f"{entry['metric']} (%)",
                 title=f"{task}: mean over seeds, band = range")  # fmt: skip
    ax_curve.grid(alpha=0.3)
    ax_curve.legend(fontsize=8)

    contrasts = list(entry["contrasts"].values())
    for k, c in enumerate(contrasts):
        f = c["factor"]
        lo, hi = f["value"] - f["ci"][0], f["ci"][1] - f["value"]
        ax_factor.errorbar([f["value"]], [k], xerr=[[lo], [hi]], fmt="o", color=colors[c["arm"]], capsize=4)
    ax_factor.axvline(1.0, color="0.3", lw=1)
    ax_factor.set_yticks(range(len(contrasts)), [c["arm"] for c in contrasts])
    ax_factor.set(xscale="log", xlabel=f"tokens {baseline} needs / tokens the arm needs",
                  title=f"data-efficiency factor vs {baseline}", ylim=(-0.7, len(contrasts) - 0.3))  # fmt: skip
    ax_factor.grid(alpha=0.3, axis="x")

    for k, arm in enumerate(arms):
        a = entry["arms"][arm]["accuracy_at_common"]
        lo, hi = a["value"] - a["ci"][0], a["ci"][1] - a["value"]
        ax_acc.errorbar(
            [k], [100 * a["value"]], yerr=[[100 * lo], [100 * hi]], fmt="o", color=colors[arm], capsize=4
        )
    ax_acc.set_xticks(range(len(arms)), arms)
    ax_acc.set(ylabel=f"{entry['metric']} (%)", xlim=(-0.6, len(arms) - 0.4),
               title=f"at {entry['largest_common_tokens']:,} tokens (all runs)")  # fmt: skip
    ax_acc.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    tmp.replace(path)
    return path
