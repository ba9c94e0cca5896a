"""The whole pipeline, augment -> validate -> pack, at growing corpus sizes: time linear, memory flat?

    nice .venv/bin/python benchmarks/scale_pipeline.py                       # 10^4 and 10^5, local and Ray
    nice .venv/bin/python benchmarks/scale_pipeline.py --sizes 10000 100000 1000000 --no-ray

Documents are paragraphs of the bundled corpora (real texts, so real lengths), drawn with a fixed seed,
each with its own id. Each stage is the real `tpt` command in a fresh process: augment with the
OpenAI-compatible stub teacher (its own process, 0 ms, on 127.0.0.1; the stub the HTTP and Ray benchmarks
use), validate, then pack (a tokenizer trained once on the first corpus). With --ray, augment and validate
run again with `--executor ray --address` on a 2-node loopback cluster (`ray.cluster_utils.Cluster`, 1 CPU
each); pack runs with --executor ray there too (--no-pack-ray: locally, and its rows say so).

Per stage and size it prints docs/s, CPU seconds per 10^3 documents and peak RSS of the driver (its
`wait4` rusage), of the stub, of the Ray workers (the cluster's `ray::` task, actor and idle worker
processes: CPU summed over the stage, peak RSS their VmHWM) and, apart, of the nodes' agents
(`ray::DashboardAgent`, `ray::RuntimeEnvAgent`: the cluster's, not the job's work), and each as a
ratio against the smallest size in the same run. The targets (issue 26): docs/s at the largest size
within 15% of the smallest; peak RSS within 25% from 10^5 to 10^6; the Ray driver's CPU below 5% of the
workers'. Every stage is checked: augment writes one
record per document, validate reads as many, pack reports as many documents as validate kept.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ["RAY_AUTH_MODE"] = "disabled"  # a loopback cluster of this user's processes
os.environ["PYTHONPATH"] = str(ROOT / "src")  # the cluster's workers run this checkout's tpt too
# Ray starts its workers at niceness 15 unless told: they would then lose the cores to any other work on
# the machine while the local pipeline's processes (niceness 0) would not. Same priority for both.
os.environ["RAY_worker_niceness"] = "0"
ENV = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def pack_argv(val: Path, pack: Path, tok: Path) -> list[str]:
    """The pack command every size and the soak run (rows of 2,048 tokens, no progress line)."""
    return [
        "pack",
        str(val),
        "--output",
        str(pack),
        "--tokenizer",
        str(tok),
        "--seq-len",
        "2048",
        "--no-progress",
    ]


def paragraphs() -> list[str]:
    corpus = Path(str(resources.files("tpt").joinpath("data/sample_corpus")))
    docs = [json.loads(line)["text"] for f in sorted(corpus.glob("*.jsonl")) for line in f.open()]
    return [p.strip() for d in docs for p in d.split("\n\n") if len(p.split()) >= 20]


def write_corpus(path: Path, n: int, texts: list[str], seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": i, "text": rng.choice(texts), "source": "bench"}) + "\n")


def proc_stats(pids: list[int]) -> tuple[float, float]:
    """(CPU s, max VmHWM MiB) over live processes."""
    import psutil

    cpu, hwm = 0.0, 0.0
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times()
            cpu += t.user + t.system
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmHWM:"):
                    hwm = max(hwm, int(line.split()[1]) / 1024)
        except (psutil.Error, OSError):
            pass
    return cpu, hwm


AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")
"""Each node's agents: `ray::` processes too, but the node's, not the job's (a raylet dies with them)."""


def ray_processes(agents: bool = False) -> list[int]:
    """The cluster's worker processes (tasks, actors, idle workers), or with `agents` its agents."""
    import psutil

    out = []
    for p in psutil.process_iter(["cmdline"]):
        title = (p.info["cmdline"] or [""])[0]
        if title.startswith("ray::") and title.startswith(AGENTS) == agents:
            out.append(p.pid)
    return out


def ray_workers() -> list[int]:
    return ray_processes()


def ray_agents() -> list[int]:
    return ray_processes(agents=True)


def stage(argv: list[str], watch: dict[str, list[int]]) -> dict[str, float]:
    """Run one `tpt` command; its wall, its own CPU and peak RSS, and the CPU and peak of the watched."""
    import threading

    pids = {k: (v if callable(v) else (lambda v=v: v)) for k, v in watch.items()}
    seen: dict[str, dict[int, float]] = {k: {} for k in watch}  # last CPU seen of each process
    peak = dict.fromkeys(watch, 0.0)
    base = {k: {pid: proc_stats([pid])[0] for pid in f()} for k, f in pids.items()}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for k, f in pids.items():
                for pid in f():
                    cpu, hwm = proc_stats([pid])
                    seen[k][pid] = cpu
                    peak[k] = max(peak[k], hwm)
            done.wait(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "tpt", *argv], env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"tpt {argv[0]} failed:\n{(proc.stderr.read() if proc.stderr else '')[-2000:]}")
    m = {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / 1024,
         "load": os.getloadavg()[1]}  # fmt: skip
    for k, f in pids.items():
        live = {pid: proc_stats([pid])[0] for pid in f()}
        # a process that exited (a job's Ray workers exit with its driver) counts its last sample (0.5 s)
        cpu = sum(live.get(pid, last) - base[k].get(pid, 0.0) for pid, last in seen[k].items())
        m[f"{k}_cpu_s"], m[f"{k}_rss_mib"] = cpu, peak[k]
    return m


def pipeline(tmp: Path, src: Path, n: int, tok: Path, stub, address: str | None, opts) -> dict[str, dict]:
    """The stages in `opts.stages` at n documents; a stage not run reads the one before from `tmp` (--keep)."""
    tag = "ray" if address else "local"
    aug, val, pack = (tmp / f"{s}-{n}-{tag}" for s in ("aug", "val", "pack"))
    ray_args = ["--executor", "ray", "--address", address] if address else []
    cluster = {"workers": ray_workers, "agents": ray_agents}
    watch: dict = {"stub": [stub.proc.pid]} | (cluster if address else {})
    rows = {}
    fresh(opts.stages, {"augment": aug, "validate": val, "pack": pack})
    if "augment" in opts.stages:
        rows["augment"] = stage(augment_argv(src, aug, stub, ray_args), watch)
    if "validate" in opts.stages:
        rows["validate"] = stage(["validate", str(aug), "--output", str(val), *ray_args], watch)
    if "validate" in opts.stages or "pack" in opts.stages:
        summary = json.loads((val / "summary.json").read_text())
        assert summary["records"] == n, f"validate read {summary['records']} of {n} records"
    if "pack" in opts.stages:
        pack_ray = ray_args if opts.pack_ray else []
        rows["pack"] = stage(pack_argv(val, pack, tok) + pack_ray, cluster if pack_ray else {})
        packed = json.loads((pack / "stats.json").read_text())["documents"]
        assert packed == summary["kept"], f"pack packed {packed} of {summary['kept']} kept documents"
    for r in rows.values():
        r["docs"] = n
    if "validate" in rows:
        rows["validate"]["kept"] = summary["kept"]
    return rows


def fresh(stages: list[str], outputs: dict[str, Path]) -> None:
    """Remove the outputs of the stages about to run: a kept one would make the run a resume (a no-op)."""
    for name in stages:
        if outputs[name].exists():
            subprocess.run(["rm", "-rf", str(outputs[name])], check=True)


def augment_argv(src: Path, aug: Path, stub, ray_args: list[str]) -> list[str]:
    """The augment command every size and the soak run (stub teacher, 1,000-document shards)."""
    return ["augment", str(src), "--output", str(aug), "--backend", "openai", "--base-url", stub.base_url,
            "--model", "stub", "--concurrency", "32", "--shard-size", "1000", "--no-progress", *ray_args,
            *(["--workers", "2"] if ray_args else [])]  # fmt: skip


class Killer:
    """SIGKILLs a busy Ray worker (an actor or a task, not an idle one) every 0.5 to 3 s, at most `per_stage` times."""

    def __init__(self, per_stage: int, seed: int = 0) -> None:
        import threading

        self.per_stage, self.rng, self.kills = per_stage, random.Random(seed), []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        import signal

        n = 0
        while n < self.per_stage and not self.done.wait(self.rng.uniform(0.5, 3)):
            # busy workers: not idle ones, and not the nodes' agents (killing one kills its raylet)
            pids = [p for p in ray_workers() if _title(p) not in ("", "ray::IDLE")]
            if pids:
                pid = self.rng.choice(pids)
                self.kills.append(_title(pid))
                os.kill(pid, signal.SIGKILL)
                n += 1

    def __enter__(self) -> Killer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")[0]
    except OSError:
        return ""


def count_ids(paths: list[Path], key=lambda r: r["id"]) -> tuple[int, int]:
    """(records, distinct ids) over JSONL files."""
    seen: set = set()
    records = 0
    for p in paths:
        for line in p.open():
            seen.add(json.dumps(key(json.loads(line))))
            records += 1
    return records, len(seen)


def soak(tmp: Path, src: Path, n: int, tok: Path, stub, address: str, opts) -> int:
    """The Ray pipeline with workers killed at random; ids counted per stage: 0 duplicates, 0 lost.

    Pack's output holds no ids: its check is that the packed shards are byte for byte those of a local
    pack of the same validated records, run once more here without kills."""
    aug, val, pack, again = (tmp / f"soak-{s}-{n}" for s in ("aug", "val", "pack", "pack-local"))
    ray_args = ["--executor", "ray", "--address", address]
    kills: dict[str, list[str]] = {}
    fresh(opts.stages, {"augment": aug, "validate": val, "pack": pack})
    fresh(["pack"] if "pack" in opts.stages else [], {"pack": again})
    for seed, name in enumerate(("augment", "validate", "pack"), 1):
        if name not in opts.stages:
            continue
        argv = {
            "augment": augment_argv(src, aug, stub, ray_args),
            "validate": ["validate", str(aug), "--output", str(val), *ray_args],
            "pack": pack_argv(val, pack, tok) + (ray_args if opts.pack_ray else []),
        }[name]
        with Killer(opts.kills if name != "pack" or opts.pack_ray else 0, seed) as killer:
            stage(argv, {})
        kills[name] = killer.kills
    print(f"\nsoak at {n:,} documents, Ray workers SIGKILLed: {kills}")
    bad = 0
    if "augment" in opts.stages or "validate" in opts.stages:
        shards = [p for p in (aug / "shards").glob("part-*.jsonl") if not p.name.endswith(".failures.jsonl")]
        rows = {
            "augment": count_ids(shards),
            "validate": count_ids([val / "kept.jsonl", val / "rejected.jsonl"]),
        }
        for name, (records, distinct) in rows.items():
            dup, lost = records - distinct, n - distinct
            bad += dup + lost
            print(
                f"  {name:<8} {records:,} records, {distinct:,} distinct ids: {dup} duplicates, {lost} lost"
            )
    if "pack" in opts.stages:
        stage(pack_argv(val, again, tok), {})
        packed = json.loads((pack / "stats.json").read_text())["documents"]
        kept = json.loads((val / "summary.json").read_text())["kept"]
        same = digest(pack) == digest(again)
        bad += abs(kept - packed) + (not same)
        where = "on Ray" if opts.pack_ray else "locally"
        print(f"  pack     {packed:,} documents packed of {kept:,} kept ({where}); shards byte-identical to "
              f"an uninterrupted local pack: {same}")  # fmt: skip
    return int(bad > 0)


def digest(out: Path) -> dict[str, str]:
    """sha256 of every packed data file (shards, Megatron files): what two equal packs share byte for byte."""
    import hashlib

    files = sorted(
        p for p in out.rglob("*") if p.is_file() and p.suffix in (".bin", ".npy", ".idx", ".jsonl")
    )
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def report(tag: str, results: dict[int, dict[str, dict]]) -> None:
    base_n = min(results)
    print(f"\n{tag}: per stage, ratios against {base_n:,} documents (same run)")
    for n, rows in sorted(results.items()):
        for name, m in rows.items():
            b = results[base_n][name]
            rate, brate = n / m["wall_s"], base_n / b["wall_s"]
            line = (
                f"{n:>9,} {name:<8} {rate:8.0f} docs/s (x{rate / brate:.2f})  driver CPU "
                f"{1e3 * m['cpu_s'] / n:6.2f} s/10^3 (x{(m['cpu_s'] / n) / (b['cpu_s'] / base_n):.2f})  "
                f"peak RSS {m['rss_mib']:6.1f} MiB (x{m['rss_mib'] / b['rss_mib']:.2f})"
            )
            for k in ("stub", "workers", "agents"):
                if f"{k}_cpu_s" in m:
                    line += f"  {k} CPU {1e3 * m[f'{k}_cpu_s'] / n:6.2f} s/10^3, peak {m[f'{k}_rss_mib']:6.1f} MiB"
            if "workers_cpu_s" in m and m["workers_cpu_s"] > 0:
                line += f"  driver/workers CPU {100 * m['cpu_s'] / m['workers_cpu_s']:.1f}%"
            line += f"  load {m['load']:.1f}"  # the machine's 5-minute load average at the stage's end
            print(line, flush=True)


def main() -> int:  # long: one benchmark's setup, loop and teardown, read top to bottom
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--ray", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument(
        "--local", action=argparse.BooleanOptionalAction, default=True, help="the local pipeline too"
    )
    ap.add_argument("--pack-ray", action=argparse.BooleanOptionalAction, default=True,
                    help="the Ray pipeline packs with --executor ray (--no-pack-ray: locally)")  # fmt: skip
    ap.add_argument("--stages", type=lambda v: v.split(","), default=["augment", "validate", "pack"],
                    help="comma-separated stages to run (default all); the others' outputs are read from --keep")  # fmt: skip
    ap.add_argument("--keep", type=Path, help="keep every output under this directory (and reuse it)")
    ap.add_argument("--json", type=Path, help="also write the measured rows here")
    ap.add_argument(
        "--soak", type=int, metavar="N", help="instead: the Ray pipeline at N documents, workers killed"
    )
    ap.add_argument("--kills", type=int, default=2, help="--soak: workers killed per Ray stage (default 2)")
    args = ap.parse_args()

    from tpt.testing.openai_stub import StubProcess

    cluster = None
    address = None
    if args.ray:
        from ray.cluster_utils import Cluster

        from tpt.core.raycluster import pin_to_loopback

        pin_to_loopback()
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        address = cluster.address
    texts = paragraphs()
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; {len(texts)} real paragraphs")
    ray_tag = "ray" if args.pack_ray else "ray (pack local)"
    results: dict[str, dict[int, dict]] = {"local": {}, ray_tag: {}}
    try:
        with StubProcess(["--latency-ms", "0", "--words", "64"], max_seconds=7200) as stub:
            with tempfile.TemporaryDirectory(prefix="tpt-scale-") as t:
                tmp = args.keep or Path(t)
                tmp.mkdir(parents=True, exist_ok=True)
                tok = tmp / "tok"
                sizes = [args.soak] if args.soak else args.sizes
                for n in sizes:
                    src = tmp / (f"soak-{n}.jsonl" if args.soak else f"docs-{n}.jsonl")
                    if not src.exists():
                        write_corpus(src, n, texts)
                    if not tok.exists():
                        subprocess.run([sys.executable, "-m", "tpt", "tokenizer", "train", str(src), "--vocab-size",
                                        "8000", "--output", str(tok), "--max-records", "2000"], check=True,
                                       env=ENV, stdout=subprocess.DEVNULL)  # fmt: skip
                    if args.soak:
                        assert address, "--soak runs the Ray pipeline: drop --no-ray"
                        return soak(tmp, src, n, tok, stub, address, args)
                    if args.local:
                        results["local"][n] = pipeline(tmp, src, n, tok, stub, None, args)
                        report("local", results["local"])
                    if address:
                        results[ray_tag][n] = pipeline(tmp, src, n, tok, stub, address, args)
                        report(ray_tag, results[ray_tag])
                    if args.keep is None:
                        for p in tmp.glob(f"*-{n}*"):
                            subprocess.run(["rm", "-rf", str(p)], check=True)
    finally:
        if cluster is not None:
            cluster.shutdown()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
