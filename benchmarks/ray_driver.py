"""The Ray driver's cost per document and its peak memory, workers reading (default) vs driver reading.

    nice .venv/bin/python benchmarks/ray_driver.py                    # 10^4 and 10^5 documents
    nice .venv/bin/python benchmarks/ray_driver.py --docs 10000 100000 1000000

One loopback Ray cluster (127.0.0.1, 2 worker CPUs) and the OpenAI-compatible stub (its own process,
0 ms latency) serve every run. Each run is the real `tpt augment --executor ray --address ...` command in a
fresh process, the driver only: the cluster is this process's, so the driver's rusage (os.wait4: its user +
system CPU and its peak RSS) counts neither the raylet nor the workers. For each size it runs
`--ray-reads driver` (the baseline: the driver reads every document, ships it to a worker and writes every
outcome) and `--ray-reads workers` (workers read their input ranges and commit their shards), and prints
the driver's CPU microseconds per document, its peak RSS, and the ratios workers/driver in the same run;
then peak RSS at the largest size over the smallest, per mode (flat in documents: ~1.0). Every run is
checked exactly once (records == documents, one per id, no partial shard).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
# The cluster is on 127.0.0.1 only; its driver is another process of this user, so no token is needed.
os.environ["RAY_AUTH_MODE"] = "disabled"
os.environ["PYTHONPATH"] = str(ROOT / "src")  # the cluster's workers run this checkout's tpt too
ENV = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def write_corpus(path: Path, n: int) -> None:
    with open(path, "w") as f:
        for i in range(n):
            words = " ".join(f"w{(i * 7 + j) % 997}" for j in range(40 + i % 60))
            f.write(json.dumps({"id": i, "text": f"document {i}: {words}"}) + "\n")


def check_exactly_once(out: Path, n: int) -> None:
    ids: set[int] = set()
    records = 0
    for p in (out / "shards").glob("part-*.jsonl"):
        if p.name.endswith(".failures.jsonl"):
            assert p.stat().st_size == 0, f"{p}: failures"
            continue
        for line in p.open():
            ids.add(json.loads(line)["id"])
            records += 1
    partial = list((out / "shards").glob("*.partial"))
    assert records == n == len(ids) and not partial, f"{out}: {records} records, {len(ids)} ids, {partial}"


def drive(src: Path, out: Path, address: str, base_url: str, mode: str, shard_size: int) -> dict[str, float]:
    cmd = [
        sys.executable, "-m", "tpt", "augment", str(src), "--output", str(out), "--backend", "openai",
        "--base-url", base_url, "--model", "stub", "--concurrency", "32",
        "--executor", "ray", "--address", address, "--workers", "2", "--ray-reads", mode,
        "--shard-size", str(shard_size), "--no-progress",
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    err = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{mode}: tpt augment failed:\n{err[-2000:]}")
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024, "wall_s": wall}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--shard-size", type=int, default=1000)
    args = ap.parse_args()

    import ray

    from tpt.core.raycluster import init_local
    from tpt.testing.openai_stub import StubProcess

    init_local(ray, num_cpus=2, include_dashboard=False, logging_level="error", log_to_driver=False)
    address = ray.get_runtime_context().gcs_address
    rows: list[dict] = []
    try:
        with StubProcess(["--latency-ms", "0", "--words", "16"], max_seconds=7200) as stub:
            with tempfile.TemporaryDirectory(prefix="tpt-ray-driver-") as tmp:
                for n in args.docs:
                    src = Path(tmp) / f"docs-{n}.jsonl"
                    write_corpus(src, n)
                    for mode in ("driver", "workers"):
                        out = Path(tmp) / f"out-{n}-{mode}"
                        m = drive(src, out, address, stub.base_url, mode, args.shard_size)
                        check_exactly_once(out, n)
                        rows.append({"docs": n, "mode": mode, **m})
                        print(
                            f"{n:>9,} docs  --ray-reads {mode:<7}  driver CPU {m['cpu_s']:7.2f} s = {1e6 * m['cpu_s'] / n:7.1f} us/doc"
                            f"  peak RSS {m['rss_mib']:7.1f} MiB  wall {m['wall_s']:7.1f} s",
                            flush=True,
                        )
                    src.unlink()
    finally:
        ray.shutdown()
    print("\nratios, workers reading / driver reading (same sizes, same run):")
    for n in args.docs:
        d, w = (next(r for r in rows if r["docs"] == n and r["mode"] == m) for m in ("driver", "workers"))
        print(
            f"{n:>9,} docs  driver CPU per doc x{w['cpu_s'] / d['cpu_s']:.3f}  peak RSS x{w['rss_mib'] / d['rss_mib']:.3f}"
        )
    if len(args.docs) > 1:
        lo, hi = min(args.docs), max(args.docs)
        for mode in ("driver", "workers"):
            a, b = (next(r for r in rows if r["docs"] == n and r["mode"] == mode) for n in (lo, hi))
            print(
                f"--ray-reads {mode:<7}: peak RSS at {hi:,} / at {lo:,} docs x{b['rss_mib'] / a['rss_mib']:.3f}; "
                f"driver CPU per doc x{(b['cpu_s'] / hi) / (a['cpu_s'] / lo):.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
