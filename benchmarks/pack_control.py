"""Peak memory and time of `tpt pack --control shuffled|filler` against the plain TPT pack, same run.

Two measurements:

1. Full pack (`--full N ...`): N synthetic records of real text lengths (the 48 bundled sample
   documents, replicated with distinct ids; each thinking is the document's words in a seeded order,
   cut to a seeded length so that every length bucket is used), packed by `python -m tpt pack` as a
   subprocess under `/usr/bin/time` three ways: plain `--mode tpt`, `--control shuffled`,
   `--control filler`, with `--workers 0` (one process: its peak RSS is the whole pack's). Prints wall
   seconds, peak RSS and the ratio of each control to the plain pack measured just before it.
2. The derangement alone (`--derange N ...`): the shuffled control's disk spill and pairing
   (pack/spill.py, controls.Derangement) for N records of synthetic thinking ids with real lengths
   (drawn from the sample corpus' thinking token counts), without reading or tokenizing JSON: pass 1
   writes every trajectory, the derangement is planned, pass 2 fetches every partner. Run in a child
   process per N, so its peak RSS is its own; flat peak RSS across N is the claim to check.

    nice -n 10 python benchmarks/pack_control.py --full 10000 --derange 10000 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

CORPUS = Path(str(resources.files("tpt").joinpath("data/sample_corpus")))


def build_input(path: Path, records: int, seed: int = 0) -> int:
    docs = [json.loads(line) for f in sorted(CORPUS.glob("*.jsonl")) for line in f.read_text().splitlines()]
    rng = random.Random(seed)
    size = 0
    with open(path, "w", encoding="utf-8") as f:
        for i in range(records):
            doc = docs[i % len(docs)]
            words = doc["text"].split()
            rng.shuffle(words)
            thinking = "Let me think about what this says. " + " ".join(words[: rng.randint(20, len(words))])
            line = json.dumps(
                {
                    "id": f"{doc['id']}#{i}",
                    "text": doc["text"],
                    "thinking": thinking,
                    "finish_reason": "stop",
                    "source": doc["source"],
                }  # fmt: skip
            )
            f.write(line + "\n")
            size += len(line) + 1
    return size


def timed_pack(args: list[str]) -> tuple[float, int]:
    """(wall seconds, peak RSS in MB) of `python -m tpt pack ARGS` in its own process."""
    cmd = ["/usr/bin/time", "-f", "%M", sys.executable, "-m", "tpt", "pack", *args]
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"pack failed: {' '.join(args)}\n{done.stderr[-2000:]}")
    return wall, int(done.stderr.strip().splitlines()[-1]) // 1024


def full(records: int, work: Path) -> None:
    data = work / f"records-{records}.jsonl"
    mb = build_input(data, records) / 1e6
    tok = work / "tok"
    if not tok.exists():
        subprocess.run([sys.executable, "-m", "tpt", "tokenizer", "train", str(CORPUS), "--vocab-size", "16000",
                        "--output", str(tok)], check=True, capture_output=True)  # fmt: skip
    common = [str(data), "--tokenizer", str(tok), "--seq-len", "2048", "--workers", "0", "--no-progress",
              "--disable-check", "repetition"]  # fmt: skip
    base_wall, base_rss = timed_pack([*common, "--output", str(work / "tpt")])
    print(
        f"full {records:>9,} records ({mb:,.0f} MB): tpt pack {base_wall:7.1f} s, peak RSS {base_rss:5d} MB"
    )
    for control in ("shuffled", "filler"):
        b_wall, b_rss = timed_pack([*common, "--output", str(work / "tpt")])  # baseline beside each
        wall, rss = timed_pack([*common, "--output", str(work / control), "--control", control])
        print(
            f"full {records:>9,} records: --control {control:8s} {wall:7.1f} s ({wall / b_wall:.2f}x the tpt "
            f"pack's {b_wall:.1f} s), peak RSS {rss:5d} MB ({rss / b_rss:.2f}x its {b_rss} MB)"
        )


def derange_child(records: int, work: str) -> None:
    import numpy as np

    from tpt.pack.spill import TrajectorySpill

    rng = np.random.default_rng(0)
    # Thinking lengths of the sample corpus in a 16k BPE run from ~150 to ~1,300 tokens.
    lengths = rng.integers(20, 1400, size=records)
    sources = ["web", "math", "code", "books"]
    start = time.monotonic()
    spill = TrajectorySpill(Path(work) / "spill", np.dtype(np.uint16))
    pool = rng.integers(0, 16000, size=1 << 16, dtype=np.uint16)
    for lo in range(0, records, 1000):  # in chunks: no list of a Python int per record in this harness
        for i, n in enumerate(lengths[lo : lo + 1000].tolist(), start=lo):
            spill.add(i, sources[i % 4], pool[(i * 7) % 50000 : (i * 7) % 50000 + n], 1)
    plan = spill.close_pass1(seed=0)
    written = time.monotonic() - start
    tokens = 0
    for lo in range(0, records, 1000):
        hi = min(records, lo + 1000)
        got = spill.partner_thinking(list(range(lo, hi)), [1] * (hi - lo))
        tokens += sum(len(t[0]) for t in got)
    spill.finish()
    assert tokens == int(lengths.sum())
    wall = time.monotonic() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(
        f"derangement {records:>9,} records ({tokens / 1e6:,.0f} M thinking tokens, {plan.facts()['groups']} "
        f"groups): {wall:6.1f} s (pass 1 spill {written:.1f} s), peak RSS {rss} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", type=int, nargs="*", default=[10_000], help="record counts for full packs")
    parser.add_argument("--derange", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        derange_child(args.child, args.work)
        return
    with tempfile.TemporaryDirectory(prefix="pack-control-") as tmp:
        for n in args.derange:
            subprocess.run([sys.executable, __file__, "--child", str(n), "--work", tmp], check=True)
        for n in args.full:
            full(n, Path(tmp))


if __name__ == "__main__":
    main()
