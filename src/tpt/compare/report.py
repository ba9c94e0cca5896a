"""compare.md: the verdicts first, then per task the factors, the accuracies and the runs compared.

Every name in it (arms, tasks, paths, settings) is data, escaped so that markdown shows it as written.
"""

from __future__ import annotations

import re

from tpt.core.jsontypes import JSONObject

_SPECIAL = re.compile(r"([\\`*_{}\[\]#|!~$])")
"""Markdown specials anywhere in a line (names never start a line here, so list markers need no escape)."""


def escape(text: object) -> str:
    """Plain text for markdown: specials backslash-escaped, <, > and & as entities, one line."""
    s = " ".join(str(text).split())
    s = _SPECIAL.sub(r"\\\1", s)
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _ci(iv: JSONObject, scale: float = 1.0, fmt: str = ".2f", suffix: str = "") -> str:
    v, (lo, hi) = iv["value"] * scale, iv["ci"]
    return f"{v:{fmt}}{suffix} [{lo * scale:{fmt}}, {hi * scale:{fmt}}]"


def markdown(report: JSONObject) -> str:
    base = report["baseline"]
    conf = report["settings"]["confidence"]
    lines = [f"# tpt compare: {len(report['arms'])} arms against {escape(base)}", ""]
    for task, entry in report["tasks"].items():
        for c in entry["contrasts"].values():
            f, d = c["factor"], c["accuracy_difference"]
            lines.append(
                f"- {escape(task)}, {escape(c['arm'])} vs {escape(base)}: **{c['verdict']}**: data-efficiency factor "
                f"{_ci(f, suffix='x')} ({f['n_seeds']} seed(s), {f['n_items']} items); accuracy at "
                f"{c['tokens']:,} tokens {_ci(d, 100, '+.1f')} points ({c['difference_verdict']})"
            )
    lines += [
        "",
        "Factor: tokens the baseline needs to reach its own final mean accuracy / tokens the arm needs (first "
        "crossing, log-linear between checkpoints; an arm that never gets there is compared at the accuracy it "
        "reached, charged its whole budget). Intervals: t over seeds on the log factor plus a bootstrap over "
        f"test items ({report['settings']['bootstrap']} replicates), {100 * conf:g}%. A verdict is a gain or a loss "
        "only when the whole interval is above or below no effect (factor 1, difference 0).",
        "",
    ]
    for task, entry in report["tasks"].items():
        lines += [f"## {escape(task)}", "",
                  f"{entry['n_items']} items, metric {escape(entry['metric'])}; largest token count every run has: "
                  f"{entry['largest_common_tokens']:,}.", ""]  # fmt: skip
        if entry["contrasts"]:
            lines += ["| arm | factor vs " + escape(base) + " | verdict | accuracy difference (points) | verdict | seeds |",
                      "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
            for c in entry["contrasts"].values():
                f, d = c["factor"], c["accuracy_difference"]
                lines.append(
                    f"| {escape(c['arm'])} | {_ci(f, suffix='x')} | {c['verdict']} | {_ci(d, 100, '+.1f')} | "
                    f"{c['difference_verdict']} | {f['n_seeds']} |"
                )
            lines.append("")
        lines += [
            "| arm | accuracy at largest common tokens (%) | seeds | per seed (%) |",
            "| --- | --- | --- | --- |",
        ]
        for arm, a in entry["arms"].items():
            iv = a["accuracy_at_common"]
            per = ", ".join(f"{escape(s)}: {100 * v:.1f}" for s, v in iv["per_seed"].items())
            lines.append(f"| {escape(arm)} | {_ci(iv, 100, '.1f')} | {iv['n_seeds']} | {per} |")
        lines.append("")
        if task in report.get("plots", {}):
            lines += [f"![{escape(task)}]({escape(report['plots'][task])})", ""]
        for c in entry["contrasts"].values():
            lines.append(f"- {escape(c['arm'])}: {escape(c['factor']['method'])}; target accuracy "
                         f"{100 * c['target_accuracy']:.1f}%")  # fmt: skip
        lines.append("")
    if report.get("tasks_skipped"):
        lines += ["## Tasks not compared", ""]
        for task, lacking in report["tasks_skipped"].items():
            lines.append(f"- {escape(task)}: not scored for {escape(', '.join(lacking))}")
        lines.append("")
    lines += [
        "## Runs",
        "",
        "| arm | seed | seed from | model | results file |",
        "| --- | --- | --- | --- | --- |",
    ]
    for arm, runs in report["arms"].items():
        for r in runs:
            lines.append(f"| {escape(arm)} | {escape(r['seed'])} | {r['seed_from']} | {escape(r['model'])} | "
                         f"{escape(r['source'])} |")  # fmt: skip
    return "\n".join(lines) + "\n"
