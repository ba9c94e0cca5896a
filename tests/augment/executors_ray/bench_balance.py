"""Balance on a real local Ray cluster (not a test): 2 workers, 96 documents, the first 32 slow (+1 s, as a
domain with long thinking), in big units (shard 48: one per worker) and in small ones.

Run: python tests/augment/executors_ray/bench_balance.py
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import ray

from tpt.augment.backends.base import SamplingParams
from tpt.augment.executors.ray.executor import run
from tpt.augment.executors.ray.options import RayOptions
from tpt.augment.stage import AugmentConfig
from tpt.core.raycluster import init_local
from tpt.testing.openai_stub import StubProcess


def main() -> None:
    root = Path(tempfile.mkdtemp(prefix="tpt-bench-balance-"))
    src = root / "docs.jsonl"
    src.write_text(
        "".join(
            json.dumps({"id": i, "text": f"document {i}" + (" slowdoc" if i < 32 else "")}) + "\n"
            for i in range(96)
        )
    )
    init_local(ray, num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False)
    stub_args = [
        "--latency-ms",
        "100",
        "--words",
        "8",
        "--schedule",
        '[["slowdoc", ["slow"]]]',
        "--slow-s",
        "1.0",
    ]
    try:
        with StubProcess(stub_args) as stub:
            for shard_size, units_per_worker in ((48, 1), (12, 2), (8, 2)):
                cfg = AugmentConfig(
                    inputs=[str(src)],
                    output=root / f"out-{shard_size}-{units_per_worker}",
                    backend="openai",
                    shard_size=shard_size,
                    progress=False,
                    backend_options={"model": "stub", "base_url": stub.base_url, "concurrency": 4},
                    sampling=SamplingParams(max_tokens=64, seed=1),
                )
                t0 = time.monotonic()
                summary = run(cfg, RayOptions(workers=2, units_per_worker=units_per_worker))
                wall = time.monotonic() - t0
                print(
                    f"shard-size {shard_size:2d}, units-per-worker {units_per_worker}: {summary.records} records "
                    f"in {wall:.1f} s ({summary.records / wall:.1f} documents/s)",
                    flush=True,
                )
    finally:
        ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
