"""Soak the `openai` backend: 512 in flight against a long-tailed, faulty stub; memory, waits, exactly once.

    nice .venv/bin/python benchmarks/augment_soak.py                  # 2,000 then 20,000 documents
    nice .venv/bin/python benchmarks/augment_soak.py --docs 2000 --big 50000

The stub (its own process, 127.0.0.1) answers after a log-normal latency (median --latency-ms, p99 20x
the median: sigma 1.288) and gives 10% of attempts a transient fault (500, 503, 429 with Retry-After,
a dropped connection, a half-sent body, invalid JSON). Each size runs the real `tpt augment` command
(`--concurrency 512`) in a fresh process, which reports its own peak RSS (VmHWM, reset at exec) and,
through two hooks that only take timestamps, when each document was pulled for a request and when its
outcome was written. The stub writes when each attempt arrived and how long it took. Figures, as ratios:

- peak RSS at the big size / at the small size (flat: ~1.0);
- per document, its time in flight, from its first attempt's arrival at the server to its outcome on
  disk, over its own time: the latencies of its attempts plus the backoff the client may wait between
  them (Retry-After, else 0.5 s doubling); max and p99 over the documents whose own time is at least
  the median latency (1.0: nothing waited on anything else; a fixed overhead of milliseconds is no
  multiple of a 2 ms latency), and the most any document spent beyond its own time, over the median
  latency. The wait before the first attempt (pulled, waiting for one of the 512 slots) is printed;
- exactly once: records == documents, one per id, no failure lines, no partial shard.
Exits 1 when a figure misses its bound (--max-rss-ratio, --max-wait-ratio) or exactly-once fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
FAULTS = "500,503,429,drop,partial,garbage"
SIGMA_20X = 1.288  # exp(2.326 * 1.288) = 20: p99 / median of a log-normal
RETRY_BASE_S, RETRY_MAX_S = 0.5, 60.0  # the openai backend's defaults (openai_http.py)


def child(argv: list[str], timing: str) -> int:
    """Run `tpt augment` here with two timestamp hooks (16 bytes per document: two arrays of doubles
    indexed by input position); write {rc, peak_rss_kib, pulled: [...], written: [...]}."""
    from array import array

    from tpt.augment import shards
    from tpt.augment.backends import openai_http
    from tpt.cli import main

    pulled, written = array("d"), array("d")
    real_generate, real_write = openai_http.OpenAIHttpBackend.generate, shards.OpenShard.write

    def stamp(times: array, index: int) -> None:
        if index >= len(times):
            times.extend([0.0] * (index + 1 - len(times) + 4096))
        times[index] = time.time()

    def generate(self, requests, sampling):
        def stamped():
            for r in requests:
                stamp(pulled, r.key)
                yield r

        return real_generate(self, stamped(), sampling)

    def write(self, index, line, *, failure):
        ok = real_write(self, index, line, failure=failure)
        if ok:
            stamp(written, index)
        return ok

    openai_http.OpenAIHttpBackend.generate = generate
    shards.OpenShard.write = write
    rc = main(argv)
    hwm = next(
        int(x.split()[1])
        for x in Path("/proc/self/status").read_text().splitlines()
        if x.startswith("VmHWM:")
    )
    Path(timing).write_text(
        json.dumps({"rc": rc, "peak_rss_kib": hwm, "pulled": pulled.tolist(), "written": written.tolist()})
    )
    return rc


def write_corpus(path: Path, n: int, words: int) -> list[str]:
    """Write the corpus; returns sha1 of each document's prompt (the stub's key for its attempts)."""
    from tpt.augment.prompts import load_template

    template = load_template("paper")
    vocab = "the of and to in is that for it as with was on be by this are from or an which".split()
    keys = []
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            text = f"Document {i}. " + " ".join(vocab[(i * 7 + k * 13) % len(vocab)] for k in range(words))
            f.write(json.dumps({"id": f"doc-{i}", "text": text}) + "\n")
            keys.append(hashlib.sha1(template.render(text).encode()).hexdigest())
    return keys


def allowed_backoff(attempts: list[list], retry_after_s: float) -> float:
    """The most the client may wait between these attempts by its own schedule."""
    total = 0.0
    for k, (_, _, fault, _) in enumerate(attempts[:-1], start=1):
        if fault == "429":
            total += min(retry_after_s, 300.0) + 0.1 * RETRY_BASE_S
        else:
            total += min(RETRY_MAX_S, RETRY_BASE_S * 2 ** (k - 1))
    return total


def quantile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def soak(n: int, a: argparse.Namespace, tmp: Path) -> dict:
    corpus, out = tmp / f"corpus-{n}.jsonl", tmp / f"out-{n}"
    keys = write_corpus(corpus, n, a.doc_words)
    stub_timing, client_timing = tmp / f"stub-{n}.json", tmp / f"client-{n}.json"
    from tpt.testing.openai_stub import StubProcess

    stub_args = [
        "--latency-ms",
        str(a.latency_ms),
        "--latency-sigma",
        str(SIGMA_20X),
        "--fail-rate",
        str(a.fail_rate),
        "--faults",
        FAULTS,
        "--retry-after-s",
        str(a.retry_after_s),
        "--words",
        str(a.words),
        "--timing-out",
        str(stub_timing),
    ]
    argv = [
        "augment",
        str(corpus),
        "--output",
        str(out),
        "--backend",
        "openai",
        "--model",
        "stub",
        "--concurrency",
        str(a.concurrency),
        "--max-retries",
        str(a.max_retries),
        "--no-progress",
        "--shard-size",
        str(a.shard_size),
    ]
    with StubProcess(stub_args, max_seconds=3600) as stub:
        t0 = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                str(client_timing),
                "--",
                *argv,
                "--base-url",
                stub.base_url,
            ],
            env=ENV,
            capture_output=True,
            text=True,
        )
        wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise SystemExit(f"tpt augment failed ({done.returncode}):\n{done.stderr[-3000:]}")
    client = json.loads(client_timing.read_text())
    attempts = json.loads(stub_timing.read_text())
    latencies = sorted(t[1] for tries in attempts.values() for t in tries if t[2] == "ok")
    median = quantile(latencies, 0.5)
    ratios, pre_send, extra, longest = [], [], [], 0.0
    for i, key in enumerate(keys):
        tries = attempts[key]
        own = sum(t[1] for t in tries) + allowed_backoff(tries, a.retry_after_s)
        in_flight = client["written"][i] - tries[0][0]
        if own >= median:  # a constant overhead of milliseconds is no "multiple" of a 2 ms latency
            ratios.append(in_flight / own)
        extra.append(in_flight - own)
        pre_send.append(tries[0][0] - client["pulled"][i])
        longest = max(longest, own)
    ids = [
        json.loads(line)["id"]
        for p in sorted((out / "shards").glob("part-*.jsonl"))
        if not p.name.endswith(".failures.jsonl")
        for line in p.read_text().splitlines()
    ]
    summary = json.loads((out / "summary.json").read_text())
    exactly_once = (
        len(ids) == n == len(set(ids))
        and summary["failures"] == 0
        and summary["complete"]
        and not list((out / "shards").glob("*.partial"))
    )
    return {
        "docs": n,
        "wall_s": wall,
        "peak_rss_mib": client["peak_rss_kib"] / 1024,
        "attempts": sum(len(t) for t in attempts.values()),
        "faults": sum(t[2] != "ok" for tries in attempts.values() for t in tries),
        "latency_median_s": quantile(latencies, 0.5),
        "latency_p99_s": quantile(latencies, 0.99),
        "latency_max_s": latencies[-1],
        "wait_ratio_max": max(ratios),
        "wait_ratio_p99": quantile(ratios, 0.99),
        "extra_wait_max_s": max(extra),
        "extra_wait_p99_s": quantile(extra, 0.99),
        "pre_send_p50_s": quantile(pre_send, 0.5),
        "pre_send_max_s": max(pre_send),
        "exactly_once": exactly_once,
        "longest_own_s": longest,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--docs", type=int, default=2000, help="the small run (the RSS baseline)")
    p.add_argument("--big", type=int, default=20000, help="the soak run")
    p.add_argument("--concurrency", type=int, default=512)
    p.add_argument("--latency-ms", type=float, default=200.0, help="median stub latency")
    p.add_argument("--fail-rate", type=float, default=0.10)
    p.add_argument("--retry-after-s", type=float, default=0.5)
    p.add_argument("--max-retries", type=int, default=8)
    p.add_argument("--words", type=int, default=64, help="thinking words per stub answer")
    p.add_argument("--doc-words", type=int, default=150)
    p.add_argument("--shard-size", type=int, default=1000, help="tpt augment --shard-size (its default)")
    p.add_argument("--max-rss-ratio", type=float, default=1.25)
    p.add_argument("--max-wait-ratio", type=float, default=3.0)
    if sys.argv[1:2] == ["--child"]:  # python augment_soak.py --child TIMING -- <tpt arguments>
        return child(sys.argv[4:], sys.argv[2])
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="tpt-soak-") as tmp:
        runs = [soak(n, a, Path(tmp)) for n in (a.docs, a.big)]
    small, big = runs
    print(
        f"\nstub: log-normal latency, median {a.latency_ms:g} ms (p99 20x), {a.fail_rate:.0%} transient "
        f"faults ({FAULTS}); concurrency {a.concurrency}; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"{'docs':>7} {'wall s':>7} {'attempts':>8} {'faults':>6} {'lat p50':>7} {'lat p99':>7} {'lat max':>7} "
        f"{'RSS MiB':>7} {'wait max':>8} {'wait p99':>8} {'extra max s':>11} {'pre-send max s':>14} exactly once"
    )
    for r in runs:
        print(
            f"{r['docs']:7d} {r['wall_s']:7.1f} {r['attempts']:8d} {r['faults']:6d} "
            f"{r['latency_median_s']:7.3f} {r['latency_p99_s']:7.3f} {r['latency_max_s']:7.2f} "
            f"{r['peak_rss_mib']:7.1f} {r['wait_ratio_max']:8.3f} {r['wait_ratio_p99']:8.3f} "
            f"{r['extra_wait_max_s']:11.3f} {r['pre_send_max_s']:14.2f} {r['exactly_once']}"
        )
    rss_ratio = big["peak_rss_mib"] / small["peak_rss_mib"]
    wait = max(r["wait_ratio_max"] for r in runs)
    extra = max(r["extra_wait_max_s"] for r in runs) / big["latency_median_s"]
    print(
        f"latency p99 / median: {big['latency_p99_s'] / big['latency_median_s']:.1f}x; faults / attempts: "
        f"{big['faults'] / big['attempts']:.3f}"
    )
    print(f"peak RSS, {big['docs']} / {small['docs']} docs: {rss_ratio:.3f}x (bound {a.max_rss_ratio})")
    print(
        f"time in flight / (own latencies + allowed backoff), documents at or above the median latency: "
        f"max {wait:.3f}x, p99 {big['wait_ratio_p99']:.3f}x (bound {a.max_wait_ratio})"
    )
    print(
        f"most time in flight beyond its own, any document: {extra:.3f}x the median latency "
        f"(bound {a.max_wait_ratio})"
    )
    print(
        f"wall / the slowest document's own time: {big['wall_s'] / big['longest_own_s']:.2f}x at {big['docs']} "
        "docs (start-up included: the run ends with its slowest document)"
    )
    exact = all(r["exactly_once"] for r in runs)
    print(f"exactly once: {'yes' if exact else 'NO'} ({big['docs']} records, one per id, no failure line)")
    ok = rss_ratio <= a.max_rss_ratio and wait <= a.max_wait_ratio and extra <= a.max_wait_ratio and exact
    print("soak: " + ("met" if ok else "MISSED"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
