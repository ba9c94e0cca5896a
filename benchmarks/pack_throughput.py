"""Throughput of `tpt pack` end to end against the same tokenizer's `encode_batch` in memory.

Builds ~20 MB of augmented records by replicating the bundled sample corpus (48 documents) with a
synthetic trajectory per document (the document's words in a seeded random order: realistic word
statistics for a BPE, and no copy or repetition for the checks to reject), trains a byte-level BPE
student tokenizer on it, then, in the same run and on the same machine:

- baseline: `Tokenizer.encode_batch` over exactly the texts that pack tokenizes (each record's
  document and thinking), already in memory, in batches of 1,000 and in one call (the faster counts);
- tpt pack: `python -m tpt pack INPUT --output DIR --tokenizer TOK --seq-len 2048` as a whole process
  (JSONL in, validation, tokenization, shuffle, packing, shards and stats out), default checks on.

Prints the throughput of both in MB/s of text and the ratio pack/baseline (target >= 1.0) for each
repeat, baseline and pack run back to back; the median ratio is the figure. Other load on the machine
moves both numbers; the ratio of neighbours is what to compare.

    python benchmarks/pack_throughput.py [--mb 20] [--repeats 3] [--tokenizer DIR_OR_JSON]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path


def build_input(path: Path, target_mb: float, seed: int = 0, corpus: Path | None = None) -> tuple[int, int]:
    corpus = corpus or Path(str(resources.files("tpt").joinpath("data/sample_corpus")))
    docs = [json.loads(line) for f in sorted(corpus.rglob("*.jsonl")) for line in f.read_text().splitlines()]
    rng = random.Random(seed)
    records = size = 0
    with open(path, "w", encoding="utf-8") as f:
        while size < target_mb * 1e6:
            for doc in docs:
                if size >= target_mb * 1e6:
                    break
                words = doc["text"].split()
                rng.shuffle(words)
                thinking = "Let me think about what this says. " + " ".join(words)
                f.write(
                    json.dumps(
                        {
                            "id": f"{doc['id']}#{records}",
                            "text": doc["text"],
                            "thinking": thinking,
                            "finish_reason": "stop",
                            "source": doc.get("source", "corpus"),
                        }
                    )
                    + "\n"
                )
                records += 1
                size += len(doc["text"].encode()) + len(thinking.encode())
    return records, size


def texts_of(path: Path) -> list[str]:
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        texts += [r["text"].rstrip(), r["thinking"].strip()]
    return texts


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def time_baseline(tokenizer_path: Path, texts: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of the faster of batches of 1,000 and one call."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_path))
    best = (float("inf"), float("inf"))
    for batch in (1000, len(texts)):
        started, cpu = time.perf_counter(), cpu_seconds(resource.RUSAGE_SELF)
        for i in range(0, len(texts), batch):
            tok.encode_batch(texts[i : i + batch], add_special_tokens=False)
        best = min(best, (time.perf_counter() - started, cpu_seconds(resource.RUSAGE_SELF) - cpu))
    return best


def time_pack(input_path: Path, tokenizer: Path, out: Path, extra: list[str]) -> tuple[float, float, dict]:
    """(wall s, CPU s, stats) of the whole `tpt pack` process and its workers."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tpt",
            "pack",
            str(input_path),
            "--output",
            str(out),
            "--tokenizer",
            str(tokenizer),
            "--seq-len",
            "2048",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
    )
    # wait4: this child's own CPU time, its reaped workers included. (Its ru_maxrss would count the
    # pages of this benchmark process that the child shared before exec: not reported.)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"tpt pack failed with exit code {proc.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, cpu, json.loads((out / "stats.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=20.0, help="MB of text (documents + thinking) to pack")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--tokenizer", default=None, help="a tokenizer dir/tokenizer.json (default: train one)"
    )
    parser.add_argument("--no-validate", action="store_true", help="pack with --no-validate")
    parser.add_argument(
        "--corpus",
        type=Path,
        default=None,
        help="directory of JSONL documents ('text' field) to build the input from, replicated only "
        "as far as --mb needs (default: the bundled 48-document sample corpus)",
    )
    parser.add_argument(
        "--pack-arg",
        action="append",
        default=[],
        help="extra argument for tpt pack, e.g. --pack-arg=--piece-cache=0 (repeatable)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tpt-bench-") as tmp:
        tmp = Path(tmp)
        records, size = build_input(tmp / "augmented.jsonl", args.mb, corpus=args.corpus)
        print(
            f"input: {records} records, {size / 1e6:.1f} MB of text: "
            f"{args.corpus or 'the bundled sample corpus (48 documents)'}, replicated as far as "
            "needed, each copy with synthetic thinking (its words shuffled, seed 0)"
        )
        if args.tokenizer:
            tok_dir = Path(args.tokenizer)
        else:
            tok_dir = tmp / "tok"
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "tpt",
                    "tokenizer",
                    "train",
                    str(tmp / "augmented.jsonl"),
                    "--vocab-size",
                    "16000",
                    "--output",
                    str(tok_dir),
                    "--max-records",
                    "2000",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        tok_json = tok_dir / "tokenizer.json" if tok_dir.is_dir() else tok_dir
        texts = texts_of(tmp / "augmented.jsonl")
        print(
            f"tokenizer: {tok_json} | cores: {os.cpu_count()} | RAYON_NUM_THREADS="
            f"{os.environ.get('RAYON_NUM_THREADS', 'unset')}"
        )
        extra = (["--no-validate"] if args.no_validate else []) + args.pack_arg
        ratios, cpu_ratios = [], []
        for k in range(args.repeats):
            base, base_cpu = time_baseline(tok_json, texts)
            seconds, cpu, stats = time_pack(tmp / "augmented.jsonl", tok_dir, tmp / f"packed-{k}", extra)
            assert stats["records"]["read"] == records, stats["records"]
            ratios.append(base / seconds)
            cpu_ratios.append(base_cpu / cpu)
            print(
                f"repeat {k}: encode_batch {size / 1e6 / base:5.2f} MB/s "
                f"({base:5.2f} s, {base_cpu:5.2f} CPU s)"
                f" | tpt pack{''.join(' ' + a for a in extra)} {size / 1e6 / seconds:5.2f} MB/s "
                f"({seconds:5.2f} s, {cpu:5.2f} CPU s; {stats['documents']} packed, "
                f"{stats['records']['skipped']} skipped, {stats['total_tokens']:,} tokens) | "
                f"ratio {ratios[-1]:.2f}x"
            )
        load = os.getloadavg()[0]
        print(
            f"tpt pack / encode_batch throughput: median {statistics.median(ratios):.2f}x "
            f"(min {min(ratios):.2f}x, max {max(ratios):.2f}x; target >= 1.0x); "
            "CPU-time ratio (encode_batch CPU / pack process CPU) median "
            f"{statistics.median(cpu_ratios):.2f}x; "
            f"load average {load:.1f} on {os.cpu_count()} cores"
        )


if __name__ == "__main__":
    main()
