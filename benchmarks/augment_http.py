"""Benchmark the `openai` backend against a 100 ms stub: wall time vs the ideal, peak RSS vs size.

    .venv/bin/python benchmarks/augment_http.py             # 2k docs: bare loop, generate(), CLI
    .venv/bin/python benchmarks/augment_http.py --big 20000 # + peak RSS at 20k docs (~35 s each)

Ideal time = requests x latency / concurrency (2,000 x 100 ms / 64 = 3.125 s). Targets (issue 2):
generate() and the whole `tpt augment` process within 1.10x the ideal, and a peak RSS that does not
grow from 2k to 20k documents. The baseline is a bare aiohttp loop measured in the same run against
the same stub, which runs as its own process so it does not share the client's GIL. The CPU is
shared with other work, so each timed phase runs --repeats times and the best is kept; the load
average is printed with the results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from tpt.testing.openai_stub import StubProcess  # noqa: E402

WORDS = "the of and to in is that for it as with was on be by this are from or an which".split()
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}


def doc_text(i: int, words: int = 300) -> str:
    """A deterministic ~1.8 KB document: the prompt size of a short web page."""
    return f"Document {i}. " + " ".join(WORDS[(i * 7 + k * 13) % len(WORDS)] for k in range(words))


def bare_aiohttp(base_url: str, docs: int, concurrency: int) -> tuple[float, float]:
    """The floor: aiohttp with a semaphore; no retries, no thread, no result objects."""
    import aiohttp

    async def main() -> None:
        sem = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def one(i: int) -> None:
                messages = [{"role": "user", "content": doc_text(i)}]
                body = {"model": "stub", "messages": messages, "temperature": 0.6, "top_p": 0.9}
                async with sem, session.post(f"{base_url}/chat/completions", json=body) as resp:
                    data = await resp.json()
                    assert data["choices"][0]["message"]["content"]

            await asyncio.gather(*(one(i) for i in range(docs)))

    cpu0, t0 = time.process_time(), time.perf_counter()
    asyncio.run(main())
    return time.perf_counter() - t0, time.process_time() - cpu0


def backend_generate(base_url: str, docs: int, concurrency: int) -> tuple[float, float]:
    """generate() over a lazy stream of requests; returns (wall s, client CPU s)."""
    from tpt.augment.backends.base import GenerationRequest, SamplingParams
    from tpt.augment.backends.openai_http import build

    backend = build({"model": "stub", "base_url": base_url, "concurrency": concurrency})
    requests = (
        GenerationRequest(key=i, messages=({"role": "user", "content": doc_text(i)},), seed=i)
        for i in range(docs)
    )
    try:
        cpu0, t0 = time.process_time(), time.perf_counter()
        results = failed = 0
        for result in backend.generate(requests, SamplingParams()):
            results += 1
            failed += result.error is not None
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    finally:
        backend.close()
    assert results == docs and failed == 0, (results, failed)
    return wall, cpu


def run_child(cmd: list[str]) -> tuple[float, float, str]:
    """Run a command; returns (wall s, peak RSS MiB of that very process, its stdout)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=ENV, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{cmd[:4]} failed:\n{err.read().decode(errors='replace')[-3000:]}")
        return wall, usage.ru_maxrss / 1024, out.read().decode(errors="replace")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def startup_s() -> float:
    """What `python -m tpt augment --help` costs: the interpreter and imports, not the work."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "tpt", "augment", "--help"], env=ENV, capture_output=True)
    return time.perf_counter() - t0


def augment_cli(url: str, tmp: Path, docs: int, concurrency: int) -> tuple[float, float]:
    """The whole `tpt augment` process writing real output: (wall s minus start-up, peak RSS)."""
    corpus = tmp / f"corpus-{docs}.jsonl"
    if not corpus.exists():
        with corpus.open("w", encoding="utf-8") as f:
            for i in range(docs):
                f.write(json.dumps({"id": f"doc-{i}", "text": doc_text(i)}) + "\n")
    out = tmp / f"out-{docs}-{time.monotonic_ns()}"
    cmd = [
        sys.executable,
        "-m",
        "tpt",
        "augment",
        str(corpus),
        "--output",
        str(out),
        "--backend",
        "openai",
        "--base-url",
        url,
        "--model",
        "stub",
        "--concurrency",
        str(concurrency),
        "--no-progress",
    ]
    wall, rss, _ = run_child(cmd)
    return wall - startup_s(), rss


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--docs", type=int, default=2000)
    p.add_argument("--big", type=int, default=0, help="also measure peak RSS at this many docs")
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--latency-ms", type=float, default=100.0)
    p.add_argument("--words", type=int, default=256, help="thinking words per stub answer")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--skip-cli", action="store_true", help="skip the `tpt augment` process runs")
    p.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--base-url", default="", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:  # a child process whose peak RSS the parent reads
        print(json.dumps(backend_generate(a.base_url, a.child, a.concurrency)))
        return 0

    rows: list[tuple[str, int, float, float | None]] = []
    sizes = [a.docs] + ([a.big] if a.big else [])
    stub_args = ["--latency-ms", str(a.latency_ms), "--words", str(a.words)]
    with StubProcess(stub_args, max_seconds=1800) as stub, tempfile.TemporaryDirectory() as tmp:
        url, n = stub.base_url, a.docs
        bare, bare_cpu = min(bare_aiohttp(url, n, a.concurrency) for _ in range(a.repeats))
        rows.append(("bare aiohttp loop (baseline)", n, bare, None))
        stub_cpu0 = cpu_s(stub.proc.pid)
        gen, gen_cpu = min(backend_generate(url, n, a.concurrency) for _ in range(a.repeats))
        stub_ms = 1000 * (cpu_s(stub.proc.pid) - stub_cpu0) / (n * a.repeats)
        rows.append(("backend.generate()", n, gen, None))
        me = [sys.executable, str(Path(__file__).resolve()), "--base-url", url]
        for size in sizes:
            _, rss, out = run_child([*me, "--concurrency", str(a.concurrency), "--child", str(size)])
            rows.append(("generate() in a fresh process", size, json.loads(out)[0], rss))
        if not a.skip_cli and (ROOT / "src/tpt/augment/cli.py").exists():
            for size in sizes:
                repeats = a.repeats if size == a.docs else 1
                runs = [augment_cli(url, Path(tmp), size, a.concurrency) for _ in range(repeats)]
                wall, rss = min(runs)
                rows.append(("tpt augment process, minus start-up", size, wall, rss))

    ideal = lambda docs: docs * a.latency_ms / 1000 / a.concurrency  # noqa: E731
    print(
        f"\nstub {a.latency_ms:g} ms/request, {a.words} words; concurrency {a.concurrency}; "
        f"best of {a.repeats}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"{'what':38} {'docs':>6} {'wall s':>7} {'ideal s':>7} {'ratio':>6} {'peak RSS MiB':>12}")
    for what, docs, wall, rss in rows:
        ratio = wall / ideal(docs)
        rss_text = f"{rss:12.0f}" if rss is not None else ""
        print(f"{what:38} {docs:6d} {wall:7.2f} {ideal(docs):7.3f} {ratio:6.3f} {rss_text}")
    print(f"floor in this run: the bare aiohttp loop took {bare / ideal(n):.3f}x the ideal")
    for what, docs, wall, _ in rows[1:]:
        if docs == n and "fresh" not in what:
            verdict = "met" if wall / ideal(n) <= 1.10 else "MISSED"
            print(f"target <= 1.10x ideal, {what}: {verdict} ({wall / ideal(n):.3f}x)")
    cli_rss = [(docs, rss) for what, docs, _, rss in rows if "tpt" in what]
    if len(cli_rss) == 2:
        (small, rss_small), (large, rss_large) = cli_rss
        print(f"tpt augment peak RSS: {rss_small:.0f} MiB at {small} docs, {rss_large:.0f} at {large}")
    print(
        f"generate() / bare loop: {gen / bare:.3f}; client CPU per request: generate() "
        f"{1000 * gen_cpu / n:.2f} ms, bare loop {1000 * bare_cpu / n:.2f} ms; stub CPU "
        f"{stub_ms:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
