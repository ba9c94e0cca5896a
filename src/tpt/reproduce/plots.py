"""The report's figures (matplotlib, headless): per world, accuracy against training tokens per arm."""

from __future__ import annotations

from pathlib import Path

from tpt.core.errors import MissingDependencyError
from tpt.core.jsontypes import JSONObject

ARM_STYLE = {
    "raw": ("tab:blue", "raw (documents alone)"),
    "tpt": ("tab:red", "TPT, oracle thinking"),
    "tpt-shuffled": ("tab:gray", "TPT, shuffled thinking (control)"),
    "tpt-filler": ("tab:olive", "TPT, filler thinking (control)"),
    "tpt-llm": ("tab:green", "TPT, SmolLM2-135M thinking"),
}


def plot_world(world: str, result: JSONObject, path: Path) -> Path:
    """One panel per task (the primary endpoint first): per arm, the mean accuracy over seeds at each
    checkpoint kept by the analysis, and each seed's accuracy as faint dots."""
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError("matplotlib", "the report's plots", extra="plot") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(result["tasks"])  # the primary endpoint first
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        for arm, by_task in result["arms"].items():
            color, label = ARM_STYLE.get(arm, ("black", arm))
            pts = by_task[task]["curve"]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=color, label=label, ms=3)
            for runs in result["per_item"]["runs"][arm].values():
                r = runs[task]
                acc = [row.count("1") / len(row) for row in r["correct"]]
                ax.plot(r["tokens"], acc, ".", color=color, alpha=0.25, ms=3)
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("training tokens (thinking included)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{world}: {task}" + (" (primary)" if task == result["primary_endpoint"] else ""))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
