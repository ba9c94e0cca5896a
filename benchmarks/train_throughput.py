"""Training throughput of `tpt train` against a minimal hand-written PyTorch loop, measured in the same run.

Both train the same model (tpt's `tiny` student, QK-norm, a ~100-token vocabulary by default) on the
same batch geometry (seq 128 x 16 rows = 2,048 tokens per step) with the same dtype (bf16 autocast, fp32
weights), AdamW and gradient clipping. The baseline is the shortest honest loop: forward with labels,
backward, clip, step. `tpt train` runs in-process through its CLI on a synthetic PACK_DIR, and its
tokens/s is read from metrics.jsonl (the first window, with warm-up, is dropped). The arms alternate
(baseline, tpt, baseline, tpt, ...) so drift in a shared CPU hits both; the figure is the median ratio.

    .venv/bin/python benchmarks/train_throughput.py --threads 1
    .venv/bin/python benchmarks/train_throughput.py --threads 2 --repeats 3
Target: ratio >= 0.90 (tpt within 10% of the minimal loop).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_pack(out: Path, *, rows: int, seq_len: int, vocab: int) -> Path:
    """A PACK_DIR of random tokens (throughput does not depend on the data), per docs/architecture.md."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    np.save(
        out / "shard-00000.tokens.npy",
        rng.integers(1, vocab, size=(rows, seq_len)).astype(np.uint16),
    )
    np.save(out / "shard-00000.kinds.npy", rng.integers(1, 3, size=(rows, seq_len)).astype(np.uint8))
    np.save(out / "shard-00000.segments.npy", np.zeros((rows, seq_len), np.uint16))
    tok = Tokenizer(models.WordLevel({f"w{i}": i for i in range(vocab)}, unk_token="w0"))
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="w0").save_pretrained(out / "tokenizer")
    index = {
        "format": "tpt-packed-v1",
        "seq_len": seq_len,
        "dtype": "uint16",
        "vocab_size": vocab,
        "eos_id": 1,
        "pad_id": 0,
        "mode": "tpt",
        "tokenizer": "tokenizer",
        "num_rows": rows,
        "shards": [{"name": "shard-00000", "rows": rows}],
        "kinds": {"0": "pad", "1": "document", "2": "thinking", "3": "template"},
    }
    (out / "index.json").write_text(json.dumps(index))
    return out


def baseline(pack: Path, *, steps: int, rows: int, size: str, precision: str) -> float:
    """Tokens/s of the minimal loop over the same rows, model, optimizer settings and dtype."""
    import torch

    from tpt.train.model import build_config, create_model

    index = json.loads((pack / "index.json").read_text())
    seq_len, vocab = index["seq_len"], index["vocab_size"]
    data = torch.from_numpy(np.load(pack / "shard-00000.tokens.npy").astype(np.int64))
    model = create_model(build_config(size, vocab_size=vocab, seq_len=seq_len), seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, betas=(0.9, 0.98), weight_decay=0.1)
    warmup = 5
    for step in range(steps + warmup):
        if step == warmup:
            t0 = time.perf_counter()
        i = (step * rows) % (len(data) - rows + 1)
        x = data[i : i + rows]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return steps * rows * seq_len / (time.perf_counter() - t0)


def tpt_train(
    pack: Path, run_dir: Path, *, steps: int, rows: int, size: str, precision: str, threads: int
) -> float:
    """Tokens/s of `tpt train` (in-process CLI), from metrics.jsonl without the first window."""
    from tpt.cli import main

    seq_len = json.loads((pack / "index.json").read_text())["seq_len"]
    log_every = 5
    code = main(
        [
            "train",
            str(pack),
            "--output",
            str(run_dir),
            "--tokens",
            str((steps + log_every) * rows * seq_len),
            "--model-size",
            size,
            "--preset",
            "testbed",
            "--batch-tokens",
            str(rows * seq_len),
            "--precision",
            precision,
            "--threads",
            str(threads),
            "--log-every",
            str(log_every),
        ]
    )
    if code:
        raise SystemExit(f"tpt train failed with status {code}")
    lines = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()][1:]
    # Weight each window by its steps: total tokens over total time of the measured windows.
    tokens = sum(r["tokens_per_step"] * log_every for r in lines)
    seconds = sum(r["tokens_per_step"] * log_every / r["tokens_per_second"] for r in lines)
    return tokens / seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=60, help="measured steps per arm and repeat")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seq-len", type=int, default=128)
    ap.add_argument("--batch-rows", type=int, default=16)
    ap.add_argument("--vocab", type=int, default=100)
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--precision", choices=("bf16", "fp32"), default="bf16")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        pack = make_pack(Path(tmp) / "pack", rows=1024, seq_len=args.seq_len, vocab=args.vocab)
        base, ours = [], []
        for r in range(args.repeats):
            base.append(
                baseline(
                    pack,
                    steps=args.steps,
                    rows=args.batch_rows,
                    size=args.size,
                    precision=args.precision,
                )
            )
            ours.append(
                tpt_train(
                    pack,
                    Path(tmp) / f"run{r}",
                    steps=args.steps,
                    rows=args.batch_rows,
                    size=args.size,
                    precision=args.precision,
                    threads=args.threads,
                )
            )
            print(
                f"repeat {r}: minimal loop {base[-1]:,.0f} tok/s, tpt train {ours[-1]:,.0f} tok/s, "
                f"ratio {ours[-1] / base[-1]:.3f}",
                file=sys.stderr,
            )
    ratio = statistics.median(o / b for o, b in zip(ours, base, strict=True))
    print(
        json.dumps(
            {
                "benchmark": "train_throughput",
                "size": args.size,
                "seq_len": args.seq_len,
                "batch_rows": args.batch_rows,
                "precision": args.precision,
                "threads": args.threads,
                "baseline_tokens_per_second": round(statistics.median(base)),
                "tpt_tokens_per_second": round(statistics.median(ours)),
                "ratio": round(ratio, 3),
                "target": ">= 0.90",
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
