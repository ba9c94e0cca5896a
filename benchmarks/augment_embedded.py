"""Throughput of the transformers backend (embedded teacher) against a plain `model.generate` loop.

Documents come from the bundled sample corpus, cut to --doc-tokens teacher tokens and wrapped in the
paper's prompt. Three measurements, all in this run, on the same model, batch size and documents:

1. raw: a plain loop of `model.generate` over static batches (left padding, same sampling) that
always
   generates exactly --max-thinking-tokens tokens per row (EOS ignored): the hardware's tokens/s for
   this shape, the reference the ratios are taken against.
2. backend: `TransformersBackend.generate` (refilled batches, EOS and `</think>` stop rows early).
3. cli (unless --no-cli): `tpt augment` end to end in a subprocess (model load, writing shards
included).

The first two alternate in --rounds rounds (so that load from other processes hits both alike).
Ratios: backend tokens/s over raw tokens/s (how much of the raw decoding rate the backend keeps,
with its prefills, sampling and stop checks), and documents/hour of each. Timings on a shared 2-core
machine are noisy (about +-10%); run it on an idle machine for numbers you report.

    .venv/bin/python benchmarks/augment_embedded.py --docs 32 --batch-size 16 --max-thinking-tokens
    128
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "src" / "tpt" / "data" / "sample_corpus"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=32, help="documents per measurement (default 32)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--doc-tokens", type=int, default=400, help="document length in teacher tokens")
    p.add_argument("--max-thinking-tokens", type=int, default=128)
    p.add_argument(
        "--engine-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="transformers backend setting, e.g. refill_at=16 (repeatable; also passed to the CLI)",
    )
    p.add_argument("--rounds", type=int, default=2, help="alternate raw and backend this many times")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--no-cli", action="store_true", help="skip the `tpt augment` end-to-end measurement")
    args = p.parse_args()

    import torch

    from tpt.augment.backends.base import GenerationRequest, SamplingParams
    from tpt.augment.backends.transformers_backend import build
    from tpt.augment.prompts import load_template

    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    backend = build(
        {
            "model": None,
            "batch_size": args.batch_size,
            "dtype": "bfloat16",
            "device": "cpu",
            "open_think": "auto",
            "engine_args": dict(a.split("=", 1) for a in args.engine_arg),
            "seed": 0,
        }
    )
    print(f"model loaded in {time.perf_counter() - started:.1f} s; torch threads {torch.get_num_threads()}")
    texts = _documents(args.docs)
    kept = [k for k, _, _ in backend.truncate(texts, args.doc_tokens)]
    template = load_template("paper")
    messages = [({"role": "user", "content": template.render(k)},) for k in kept]
    sampling = SamplingParams(max_tokens=args.max_thinking_tokens, seed=0)
    n = args.max_thinking_tokens

    # Alternate the two measurements round by round so that load from other processes on a shared
    # machine hits both alike.
    raw_s = raw_cpu = backend_s = backend_cpu = 0.0
    raw_tokens = backend_tokens = 0
    results = []
    per_round = -(-args.docs // args.rounds)
    for start in range(0, args.docs, per_round):
        chunk = range(start, min(args.docs, start + per_round))
        secs, cpu, tokens = _raw_generate(backend, [messages[i] for i in chunk], args.batch_size, n)
        raw_s, raw_cpu, raw_tokens = raw_s + secs, raw_cpu + cpu, raw_tokens + tokens
        requests = (GenerationRequest(key=i, messages=messages[i], seed=i) for i in chunk)
        t0, c0 = time.perf_counter(), time.process_time()
        got = list(backend.generate(requests, sampling))
        backend_s += time.perf_counter() - t0
        backend_cpu += time.process_time() - c0
        backend_tokens += sum(r.completion_tokens for r in got)
        results += got
    errors = [r.error for r in results if r.error]

    rows = [
        ("raw model.generate, fixed length", args.docs, raw_tokens, raw_s, raw_cpu),
        ("TransformersBackend.generate", len(results), backend_tokens, backend_s, backend_cpu),
    ]
    if not args.no_cli and (ROOT / "src" / "tpt" / "augment" / "cli.py").exists():
        rows.append(_cli(args, kept))

    raw_rate = raw_tokens / raw_s
    print(
        f"\n{args.docs} documents of {args.doc_tokens} tokens, batch {args.batch_size}, "
        f"max {n} thinking tokens, sampling T=0.6 top-p 0.9"
    )
    print(
        f"{'measurement':38} {'docs':>5} {'gen tok':>8} {'wall s':>7} {'tok/s':>7} {'docs/h':>7} "
        f"{'vs raw':>7} {'cpu ms/tok':>10}"
    )
    for name, docs, tokens, secs, cpu in rows:
        rate = tokens / secs
        cpu_ms = f"{cpu / tokens * 1000:10.1f}" if cpu else f"{'-':>10}"
        print(
            f"{name:38} {docs:5d} {tokens:8d} {secs:7.1f} {rate:7.1f} {docs / secs * 3600:7.0f} "
            f"{rate / raw_rate:6.2f}x {cpu_ms}"
        )
    mean = backend_tokens / max(1, len(results))
    print(f"backend: mean {mean:.0f} generated tokens per document; {len(errors)} errors")
    return 1 if errors else 0


def _documents(count: int) -> list[str]:
    texts = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [texts[i % len(texts)] for i in range(count)]


def _raw_generate(backend, messages, batch_size: int, n: int) -> tuple[float, float, int]:
    """The plain loop: static left-padded batches through `model.generate`, n new tokens per row."""
    import torch

    tok, model = backend.tok, backend.model
    prompts = [
        tok.apply_chat_template(list(m), tokenize=False, add_generation_prompt=True) + "<think>\n"
        for m in messages
    ]
    tok.padding_side = "left"
    tokens = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for start in range(0, len(prompts), batch_size):
        batch = tok(
            prompts[start : start + batch_size],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        )
        with torch.inference_mode():
            out = model.generate(
                **batch,
                max_new_tokens=n,
                min_new_tokens=n,
                do_sample=True,
                temperature=0.6,
                top_p=0.9,
                pad_token_id=backend.pad_id,
            )
        tokens += (out.shape[1] - batch["input_ids"].shape[1]) * out.shape[0]
    return time.perf_counter() - t0, time.process_time() - c0, tokens


def _cli(args, kept: list[str]) -> tuple[str, int, int, float]:
    """`tpt augment` end to end on the same (already cut) documents, in a fresh process."""
    with tempfile.TemporaryDirectory(prefix="tpt-bench-") as tmp:
        corpus = Path(tmp) / "docs.jsonl"
        corpus.write_text(
            "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(kept)), "utf-8"
        )
        cmd = [
            sys.executable,
            "-m",
            "tpt",
            "augment",
            str(corpus),
            "--output",
            str(Path(tmp) / "out"),
            "--backend",
            "transformers",
            "--batch-size",
            str(args.batch_size),
            "--seed",
            "0",
            "--max-thinking-tokens",
            str(args.max_thinking_tokens),
            "--max-doc-tokens",
            str(args.doc_tokens),
            "--limit",
            str(len(kept)),
            "--no-progress",
        ]
        if args.threads:
            cmd += ["--engine-arg", f"threads={args.threads}"]
        for arg in args.engine_arg:
            cmd += ["--engine-arg", arg]
        t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
        subprocess.run(
            cmd,
            check=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
            stdout=subprocess.DEVNULL,
        )
        secs = time.perf_counter() - t0
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime - c0
        summary = json.loads((Path(tmp) / "out" / "summary.json").read_text(encoding="utf-8"))
    return (
        "tpt augment (subprocess, incl. load)",
        summary["records"],
        summary["completion_tokens"],
        secs,
        cpu,
    )


if __name__ == "__main__":
    sys.exit(main())
