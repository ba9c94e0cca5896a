"""Time and peak memory of `tpt inspect` on a large augment directory, as a ratio to a plain JSON line count
of the same files measured in the same run.

The directory: a real `tpt augment` run of the bundled sample corpus (48 documents, the fault-injecting
OpenAI stub on 127.0.0.1 as the teacher: some trajectories loop and are stopped, some are cut by the
length limit, the Python book's documents fail), whose record and failure lines are then replicated
with distinct ids into N records in shards of 1000 (augment's default shard size), with its manifest and
summary. Real record shapes and sizes (about 4.7 kB a record).

Each measurement runs in its own process under `/usr/bin/time` (peak RSS), twice, alternating, and the
faster run of each is kept (the machine may be shared):
- `lines`: count the lines of every record file, bytes only (what `wc -l` does);
- `json`: json.loads every line of every record file (the plain JSON line count);
- `inspect`: `python -m tpt inspect DIR --output report.html`.

    python benchmarks/inspect_scale.py --records 1000000
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path

CORPUS = Path(str(resources.files("tpt").joinpath("data/sample_corpus")))
SHARD = 1000

COUNT = """
import json, sys
from pathlib import Path
files = sorted(p for p in (Path(sys.argv[2]) / "shards").glob("part-*") if p.name.endswith(".jsonl"))
files.append(Path(sys.argv[2]) / "failures.jsonl")
n = 0
for p in files:
    with open(p, "rb") as f:
        if sys.argv[1] == "json":
            for line in f:
                json.loads(line)
                n += 1
        else:
            n += sum(1 for _ in f)
print(n)
"""


def seed_run(work: Path) -> Path:
    from tpt.cli import main
    from tpt.testing.openai_stub import StubConfig, StubServer

    out = work / "seed"
    stub = StubConfig(latency_ms=1, words=60, loop_after=40, loop_rate=0.25, length_rate=0.15,
                      schedule=(("Python", ("400*",)),))  # fmt: skip
    with StubServer(stub) as server:
        argv = ["augment", str(CORPUS), "--output", str(out), "--backend", "openai", "--model", "stub",
                "--base-url", server.base_url, "--max-retries", "0", "--no-progress",
                "--max-thinking-tokens", "300", "--loop-window", "64"]  # fmt: skip
        if main(argv) != 0:
            raise SystemExit("the seed augment run failed")
    return out


def replicate(seed: Path, out: Path, records: int) -> int:
    """N records (and failures in the seed's proportion) with distinct ids; returns the bytes written."""
    recs = [
        line
        for p in sorted((seed / "shards").glob("part-*[0-9].jsonl"))
        for line in p.read_bytes().splitlines()
    ]
    fails = (seed / "failures.jsonl").read_bytes().splitlines()
    (out / "shards").mkdir(parents=True)
    for name in ("manifest.json", "summary.json"):
        shutil.copy(seed / name, out / name)
    size = 0
    for k in range(0, records, SHARD):
        lines = []
        for i in range(k, min(k + SHARD, records)):
            line = recs[i % len(recs)]
            head, sep, rest = line.partition(b'", "text": ')  # {"id": "ID", "text": ... -> ID#i
            lines.append(head + f"#{i}".encode() + sep + rest)
        data = b"\n".join(lines) + b"\n"
        (out / "shards" / f"part-{k // SHARD:08d}.jsonl").write_bytes(data)
        size += len(data)
    n_fail = records * len(fails) // len(recs)
    with open(out / "failures.jsonl", "wb") as f:
        for i in range(n_fail):
            f.write(fails[i % len(fails)] + b"\n")
    return size


def timed(cmd: list[str]) -> tuple[float, int, str]:
    """(wall seconds, peak RSS in MB, stdout) of a command in its own process."""
    import time

    start = time.monotonic()
    done = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True)
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
    return wall, int(done.stderr.strip().splitlines()[-1]) // 1024, done.stdout.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--work", type=Path, default=None, help="keep the directory here (default: a temp dir)")
    ap.add_argument("--repeat", type=int, default=2, help="runs of each measurement; the fastest is kept")
    ap.add_argument("--no-json", action="store_true", help="skip the json.loads baseline (the slowest)")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="tpt-inspect-bench-"))
    try:
        big = work / "aug"
        if not big.exists():
            size = replicate(seed_run(work), big, args.records)
        else:
            size = sum(p.stat().st_size for p in (big / "shards").iterdir())
        print(
            f"{args.records:,} records, {size / 1e9:.2f} GB in {len(list((big / 'shards').iterdir()))} shards"
        )
        baselines = ("lines",) if args.no_json else ("lines", "json")
        runs: dict[str, list[tuple[float, int, str]]] = {k: [] for k in (*baselines, "inspect")}
        for _ in range(args.repeat):
            for how in baselines:
                runs[how].append(timed([sys.executable, "-c", COUNT, how, str(big)]))
            cmd = [sys.executable, "-m", "tpt", "inspect", str(big), "--output", str(work / "report.html")]
            runs["inspect"].append(timed(cmd))
        best = {k: min(v) for k, v in runs.items()}
        for k, (wall, rss, out) in best.items():
            print(f"{k:8s} {wall:7.2f} s  peak RSS {rss:5d} MB  ({out.splitlines()[-1][:120]})")
        t = best["inspect"][0]
        vs_json = f", {t / best['json'][0]:.2f}x the json.loads count" if "json" in best else ""
        print(
            f"tpt inspect: {t:.2f} s = {t / best['lines'][0]:.2f}x the line count{vs_json}; "
            f"peak RSS {best['inspect'][1]} MB; report {(work / 'report.html').stat().st_size / 1e6:.2f} MB"
        )
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
