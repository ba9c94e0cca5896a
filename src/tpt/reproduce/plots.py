"""The report's figures (matplotlib, headless): accuracy against training tokens, thinking length."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tpt.errors import MissingDependencyError

ARM_STYLE = {
    "raw": ("tab:blue", "raw (abundant data)"),
    "tpt": ("tab:red", "TPT"),
    "raw-constrained": ("tab:cyan", "raw (data-constrained, repeats epochs)"),
    "tpt-weak": ("tab:orange", "TPT, weak teacher"),
}


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError("matplotlib", "the report's plots", extra="plot") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_accuracy(part1: dict[str, Any], path: Path) -> Path:
    """One panel per seed: each arm's best mode (solid) and its other mode (dotted), log tokens."""
    plt = _pyplot()
    seeds = sorted(part1["curves"]["raw"], key=int)
    fig, axes = plt.subplots(1, len(seeds), figsize=(6 * len(seeds), 4.2), squeeze=False)
    for ax, seed in zip(axes[0], seeds, strict=True):
        for arm, (color, label) in ARM_STYLE.items():
            curves = part1["curves"].get(arm, {}).get(seed)
            if not curves:
                continue
            best = part1["best_mode"][arm]
            for mode, c in sorted(curves.items()):
                style = "-" if mode == best else ":"
                ax.plot(
                    c["tokens"],
                    [100 * a for a in c["accuracy"]],
                    style,
                    color=color,
                    marker="o" if mode == best else None,
                    markersize=3,
                    label=f"{label}, {mode}" + ("" if mode == best else " (other mode)"),
                )
        eff = part1["main"]["per_seed"][seed]["final"]
        title = f"seed {seed}: data efficiency "
        title += (
            f"{eff['factor']:.2f}x"
            if eff["factor"]
            else f"< {eff['factor_upper_bound']:.2f}x (TPT never reached raw)"
        )
        ax.axhline(100 * eff["target_accuracy"], color="gray", lw=0.8, ls="--")
        if eff["tpt_tokens"]:
            ax.axvline(eff["tpt_tokens"], color="gray", lw=0.8, ls="--")
        ax.set(
            xscale="log",
            xlabel="training tokens (thinking included)",
            ylabel="held-out accuracy (%)",
            title=title,
            ylim=(0, 100),
        )
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_thinking_length(
    part2: dict[str, Any], testbed_levels: dict[str, float], path: Path
) -> Path:
    """Left: the embedded teacher's thinking length against reasoning intensity, by domain.
    Right: the procedural teacher's thinking length by testbed reasoning level."""
    plt = _pyplot()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {"math": "tab:red", "code": "tab:green", "encyclopedic": "tab:blue"}
    for domain in sorted({d["domain"] for d in part2["documents"]}):
        docs = [d for d in part2["documents"] if d["domain"] == domain]
        ax1.scatter([d["reasoning_intensity"] for d in docs], [d["thinking_tokens"] for d in docs],
                    label=f"{domain} (mean {part2['by_domain'][domain]['mean_thinking_tokens']:.0f})",
                    color=colors.get(domain))  # fmt: skip
    rho = part2["length_intensity_spearman"]
    ax1.set(xlabel="reasoning intensity (markers + math symbols per 100 words)", ylabel="thinking tokens",
            title=f"{part2['teacher']}: Spearman rho = {rho:.2f}" if rho is not None else part2["teacher"])  # fmt: skip
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    levels = sorted(testbed_levels)
    ax2.bar(levels, [testbed_levels[lv] for lv in levels], color="tab:purple")
    ax2.set(
        xlabel="testbed document",
        ylabel="mean thinking words",
        title="procedural expert: thinking by reasoning level",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
