"""`tpt inspect DIR... --output report.html`: an HTML report of augment, validate and pack directories.

The work is inspect/stage.py's run(InspectConfig); this module only parses."""

from __future__ import annotations

import argparse

HELP = (
    "write one self-contained HTML report of tpt augment, validate and pack directories: counts, "
    "length histograms, and a browser of sampled records (document beside its thinking)"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tpt.inspect.config import InspectConfig as C

    d = C.__dataclass_fields__
    p.add_argument("dirs", nargs="+", metavar="DIR", help="tpt augment, validate or pack output directories")
    p.add_argument("--output", required=True, help="the HTML file to write (a path or a URL)")
    p.add_argument("--per-group", type=int, default=d["per_group"].default,
                   help="sampled records per (source, check result) (default %(default)s)")  # fmt: skip
    p.add_argument("--seed", type=int, default=d["seed"].default, help="which sample (default %(default)s)")
    p.add_argument("--max-chars", type=int, default=d["max_chars"].default,
                   help="characters of a document and of a thinking the report holds (default %(default)s)")  # fmt: skip
    p.add_argument("--scatter-points", type=int, default=d["scatter_points"].default,
                   help="points of the thinking-length-against-reasoning-intensity plot (default %(default)s)")  # fmt: skip
    p.add_argument("--title", default=d["title"].default, help="the report's title")


def run(args: argparse.Namespace) -> int:
    from tpt.inspect.config import InspectConfig
    from tpt.inspect.stage import run as inspect

    config = InspectConfig(
        dirs=tuple(args.dirs),
        output=args.output,
        per_group=args.per_group,
        seed=args.seed,
        max_chars=args.max_chars,
        scatter_points=args.scatter_points,
        title=args.title,
    )
    s = inspect(config)
    parts = ", ".join(f"{d['kind']} {d['records']:,} records" for d in s.directories)
    print(
        f"tpt inspect: {parts}; {s.samples} sampled records shown; {s.html_bytes / 1e6:.2f} MB "
        f"in {s.wall_seconds:.1f} s -> {args.output}"
    )
    return 0
