"""The markdown table of one or more `scale_pipeline.py --json` files, with the issue's targets checked.

    .venv/bin/python benchmarks/scale_table.py runs/av.json runs/pack.json

Rows of the same executor, size and stage from later files replace earlier ones (a stage run again on
kept outputs, `--stages pack --keep DIR`). Ratios are against rows of the same file only: docs/s
against the file's smallest size, peak RSS against its second size (the issue: within 25% from 10^5 to
10^6), so every ratio compares runs of one invocation.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def load(paths: list[Path]) -> dict[tuple[str, str], dict[int, dict]]:
    """{(executor, stage): {documents: row (with the file it came from)}}."""
    rows: dict[tuple[str, str], dict[int, dict]] = {}
    for i, path in enumerate(paths):
        for executor, sizes in json.loads(path.read_text()).items():
            for n, stages in sizes.items():
                for stage, m in stages.items():
                    rows.setdefault((executor, stage), {})[int(n)] = {**m, "file": i}
    return rows


def table(rows: dict[tuple[str, str], dict[int, dict]]) -> list[str]:
    out = [
        "| executor | documents | stage | docs/s | vs smallest | driver CPU s/10^3 | driver peak RSS MiB "
        "| vs 2nd size | workers CPU s/10^3 | workers peak RSS MiB | vs 2nd size | driver/workers CPU | load |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    order = {"augment": 0, "validate": 1, "pack": 2}
    for (executor, stage), sizes in sorted(rows.items(), key=lambda kv: (kv[0][0], order.get(kv[0][1], 9))):
        ns = sorted(sizes)
        for n in ns:
            m = sizes[n]
            same = [k for k in ns if sizes[k]["file"] == m["file"]]
            small, second = same[0], same[min(1, len(same) - 1)]
            rate = n / m["wall_s"]
            vs = rate / (small / sizes[small]["wall_s"])
            cells = [executor, f"{n:,}", stage, f"{rate:,.0f}", f"x{vs:.2f}", f"{1e3 * m['cpu_s'] / n:.3f}",
                     f"{m['rss_mib']:.0f}", f"x{m['rss_mib'] / sizes[second]['rss_mib']:.2f}"]  # fmt: skip
            if m.get("workers_rss_mib"):
                w = sizes[second].get("workers_rss_mib") or m["workers_rss_mib"]
                cells += [f"{1e3 * m['workers_cpu_s'] / n:.3f}", f"{m['workers_rss_mib']:.0f}",
                          f"x{m['workers_rss_mib'] / w:.2f}", f"{100 * m['cpu_s'] / m['workers_cpu_s']:.1f}%"]  # fmt: skip
            else:
                cells += ["-", "-", "-", "-"]
            # the nodes' agents, apart from the workers (files from before they were: "-")
            agents = m.get("agents_rss_mib")
            cells.append(f"{1e3 * m['agents_cpu_s'] / n:.3f}, {agents:.0f}" if agents else "-")
            cells.append(f"{m['load']:.1f}" if "load" in m else "-")
            out.append("| " + " | ".join(cells) + " |")
    return out


def main() -> int:
    paths = [Path(p) for p in sys.argv[1:]]
    if not paths:
        raise SystemExit("usage: scale_table.py RESULTS.json [MORE.json ...]")
    print("\n".join(table(load(paths))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
