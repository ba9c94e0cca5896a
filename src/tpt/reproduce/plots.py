"""The report's figures (matplotlib, headless): accuracy against training tokens, thinking length."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tpt.core.errors import MissingDependencyError

ARM_STYLE = {
    "raw": ("tab:blue", "raw (documents alone)"),
    "tpt": ("tab:red", "TPT, oracle thinking"),
    "tpt-llm": ("tab:green", "TPT, SmolLM2-135M thinking"),
    "tpt-shuffled": ("tab:gray", "TPT, shuffled thinking (control)"),
    "tpt-filler": ("tab:olive", "TPT, filler thinking (control)"),
    "tpt-exercises": ("tab:purple", "TPT, oracle + 30% exercises"),
    "tpt-weak": ("tab:orange", "TPT, weak teacher"),
    "raw-abundant": ("tab:cyan", "raw, abundant unique data"),
    "tpt-abundant": ("tab:pink", "TPT oracle, abundant unique data"),
}


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError("matplotlib", "the report's plots", extra="plot") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy(arms: dict[str, Any], tasks: tuple[str, ...], path: Path) -> Path:
    """One panel per task (the primary endpoint first): per arm, the mean over seeds of the measured
    accuracy (dots), the mean of the per-seed monotone fits (line) and their range over seeds (band)."""
    from tpt.reproduce.stats import isotonic

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for arm, (color, label) in ARM_STYLE.items():
            e = arms.get(arm)
            if not e:
                continue
            curves = [c[task] for c in e["curves"].values() if task in c]
            if not curves:
                continue
            tokens = curves[0]["tokens"]
            measured = [sum(c["accuracy"][i] for c in curves) / len(curves) for i in range(len(tokens))]
            fits = [isotonic(c["accuracy"]) for c in curves]
            mid = [100 * sum(f[i] for f in fits) / len(fits) for i in range(len(tokens))]
            lo = [100 * min(f[i] for f in fits) for i in range(len(tokens))]
            hi = [100 * max(f[i] for f in fits) for i in range(len(tokens))]
            ax.plot(tokens, mid, "-", color=color, label=label)
            ax.fill_between(tokens, lo, hi, color=color, alpha=0.15, lw=0)
            ax.plot(tokens, [100 * a for a in measured], "o", color=color, markersize=3)
        ax.set(xscale="log", xlabel="training tokens (thinking included)", ylabel="held-out accuracy (%)",
               title=task + (" (primary endpoint)" if task == tasks[0] else ""), ylim=(0, 100))  # fmt: skip
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_thinking_length(part2: dict[str, Any], path: Path) -> Path:
    """The embedded teacher's thinking length per document of the bundled sample corpus, by domain."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.2))
    colors = {"math": "tab:red", "code": "tab:green", "encyclopedic": "tab:blue"}
    for domain in sorted({d["domain"] for d in part2["documents"]}):
        docs = [d for d in part2["documents"] if d["domain"] == domain]
        ax.scatter([d["reasoning_intensity"] for d in docs], [d["thinking_tokens"] for d in docs],
                   label=f"{domain} (mean {part2['by_domain'][domain]['mean_thinking_tokens']:.0f})",
                   color=colors.get(domain))  # fmt: skip
    ax.set(xlabel="reasoning markers per 100 words", ylabel="thinking tokens", title=part2["teacher"])
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
