"""`tpt augment` reading its corpus from a local S3 server with request latency, against the same corpus on disk.

Everything runs on this machine: the OpenAI stub (tpt.testing.openai_stub) is the teacher, moto's
S3 server (tpt.testing.s3_server) is the object store, every GET it answers delayed by --get-latency-ms
(20 ms: a remote store's first-byte latency). Measured in one run, each a `tpt augment` subprocess
(--no-progress; docs/s from its summary.json, so process start-up is not counted):
1. local: corpus on local disk, output on local disk;
2. s3-in: the same corpus as objects on the S3 server (s3://bench/corpus/), output on local disk;
   1 and 2 alternate --rounds times (the best of each is reported: on a shared machine the best is the
   run least disturbed by other work);
3. s3-both: corpus and output on the S3 server (shards committed as objects, the lease renewed);
4. s3-in at --large documents, for peak RSS against run 2 (the corpus is streamed: memory should
   not grow with the corpus).
Peak RSS is the augment process's ru_maxrss (os.wait4). The corpus is --files files of equal size.

    nice -n 10 .venv/bin/python benchmarks/object_store.py --docs 2000 --large 20000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def corpus_files(n: int, files: int, words: int) -> list[bytes]:
    per = -(-n // files)
    out = []
    for f in range(files):
        rows = range(f * per, min(n, (f + 1) * per))
        out.append(b"".join(json.dumps({"id": f"d{i}", "text": f"document {i} " + "lorem ipsum " * words}).encode()
                            + b"\n" for i in rows))  # fmt: skip
    return out


def run_augment(src: str, out: str, base_url: str, env: dict[str, str], shard_size: int) -> dict:
    from tpt.testing.openai_stub import augment_argv

    argv = augment_argv(
        src, out, base_url, "--concurrency", "16", "--shard-size", str(shard_size), "--no-progress"
    )
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "tpt", *argv], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    stderr = proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"tpt augment {src} -> {out} failed: {stderr.strip()}")
    return {"wall_s_process": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def summary_of(out: str, fs) -> dict:
    data = (
        fs.cat_file(out.split("://", 1)[1] + "/summary.json")
        if "://" in out
        else Path(out, "summary.json").read_bytes()
    )
    return json.loads(data)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=2000)
    p.add_argument("--large", type=int, default=20000, help="documents of the RSS comparison run (0: skip)")
    p.add_argument("--files", type=int, default=8, help="corpus files (the large corpus: 10x as many)")
    p.add_argument("--words", type=int, default=60, help="words per document (about 6 bytes each)")
    p.add_argument("--get-latency-ms", type=float, default=20.0)
    p.add_argument("--shard-size", type=int, default=500)
    p.add_argument("--rounds", type=int, default=3, help="alternations of local and s3-in")
    args = p.parse_args()

    import s3fs

    from tpt.testing.openai_stub import StubProcess
    from tpt.testing.s3_server import S3ServerProcess

    work = Path(tempfile.mkdtemp(prefix="tpt-bench-objstore-"))
    results: dict = {"docs": args.docs, "files": args.files, "get_latency_ms": args.get_latency_ms}
    try:
        with (
            S3ServerProcess(["--get-latency-ms", str(args.get_latency_ms)]) as server,
            StubProcess(["--latency-ms", "0", "--words", "16"], max_seconds=1800) as stub,
        ):
            env = {
                **os.environ,
                **ENV,
                "AWS_ENDPOINT_URL": server.endpoint,
                "TPT_STAGING_DIR": str(work / "staging"),
            }
            fs = s3fs.S3FileSystem(key=ENV["AWS_ACCESS_KEY_ID"], secret=ENV["AWS_SECRET_ACCESS_KEY"],
                                   endpoint_url=server.endpoint, use_listings_cache=False)  # fmt: skip
            fs.mkdir("bench")
            corpora = {"small": (args.docs, args.files)}
            if args.large:
                corpora["large"] = (args.large, args.files * 10)
            for name, (n, files) in corpora.items():
                (work / name).mkdir()
                for i, data in enumerate(corpus_files(n, files, args.words)):
                    (work / name / f"part-{i:04d}.jsonl").write_bytes(data)
                    fs.pipe_file(f"bench/{name}/part-{i:04d}.jsonl", data)
            runs = []
            for r in range(args.rounds):
                runs += [("local", str(work / "small"), str(work / f"out-local-{r}")),
                         ("s3-in", "s3://bench/small/", str(work / f"out-s3-in-{r}"))]  # fmt: skip
            runs.append(("s3-both", "s3://bench/small/", "s3://bench/out-s3-both"))
            if args.large:
                runs.append(("s3-in-large", "s3://bench/large/", str(work / "out-s3-in-large")))
            for label, src, out in runs:
                measured = run_augment(src, out, stub.base_url, env, args.shard_size)
                s = summary_of(out, fs)
                wall = s.get("wall_seconds", s.get("wall_time_s_this_run"))
                measured.update({"records": s["records"], "wall_s": wall,
                                 "docs_per_s": round(s["records"] / wall, 1) if wall else None})  # fmt: skip
                results.setdefault(label, []).append(measured)
                print(label, json.dumps(measured), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    best = {label: max(r["docs_per_s"] for r in rs) for label, rs in results.items() if isinstance(rs, list)}
    results["best_docs_per_s"] = best
    results["ratio_s3_in_over_local"] = round(best["s3-in"] / best["local"], 3)
    results["ratio_s3_both_over_local"] = round(best["s3-both"] / best["local"], 3)
    if args.large:
        small_rss = max(r["peak_rss_mib"] for r in results["s3-in"])
        results["rss_large_over_small"] = round(results["s3-in-large"][0]["peak_rss_mib"] / small_rss, 3)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
