"""`tpt inspect`: read each directory once (streamed counts, a seeded reservoir sample) and write the
report. `run(InspectConfig(...)) -> InspectSummary`.

    from tpt.inspect.config import InspectConfig
    from tpt.inspect.stage import run
    summary = run(InspectConfig(dirs=["aug/", "val/", "packed/"], output="report.html"))
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from tpt.core.artifacts import write_atomic
from tpt.formats.summaries import InspectSummary
from tpt.inspect.config import InspectConfig
from tpt.inspect.dirs import read_dir
from tpt.inspect.render import page
from tpt.inspect.samples import sample_json
from tpt.storage import as_path


def run(config: InspectConfig) -> InspectSummary:
    started = time.monotonic()
    out = as_path(config.output)
    dirs = [
        read_dir(d, per_group=config.per_group, seed=config.seed, scatter=config.scatter_points)
        for d in config.dirs
    ]
    samples = {str(i): [sample_json(s, config.max_chars) for s in d.samples] for i, d in enumerate(dirs)}
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    from tpt import __version__

    html = page(dirs, samples, title=config.title, generated=f"tpt {__version__}, {now}")
    data = html.encode("utf-8")
    write_atomic(out, data)
    return InspectSummary(
        output=out,
        directories=tuple(
            {"path": d.path, "kind": d.kind, "records": d.tally.records, "samples": len(d.samples)}
            for d in dirs
        ),
        records=sum(d.tally.records for d in dirs),
        samples=sum(len(d.samples) for d in dirs),
        html_bytes=len(data),
        wall_seconds=round(time.monotonic() - started, 3),
    )
