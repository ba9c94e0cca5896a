"""Benchmark: tpt's GSM8K score against lm-evaluation-harness's, same model, same examples, same prompts.

    python benchmarks/eval_vs_lm_eval.py --lm-eval-python /path/to/python-with-lm_eval [--n 16] [--max-new-tokens 256]

The model is the embedded teacher SmolLM2-135M-Instruct, converted to a Hugging Face directory by
`tpt.core.hfmodel.resolve_model_dir` so that lm-eval's `hf` model loads it. Steps:
1. `tpt eval --export-lm-eval` writes the GSM8K task (the first N test questions, tpt's 5-shot prompts);
2. tpt scores the model (HF engine, greedy, bf16, batched);
3. `lm_eval run --model hf --include_path ...` scores it fully offline (HF_DATASETS_OFFLINE=1);
4. the script compares the two per question: identical generations, identical extractions, scores, and
   explains every disagreement (different generation, or same text scored differently).
lm-eval is not a tpt dependency: install it in any Python that also sees torch and transformers (a venv
whose .pth points at tpt's site-packages works) and pass that interpreter with --lm-eval-python.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--lm-eval-python",
        default=sys.executable,
        help="a Python interpreter that can import lm_eval",
    )
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--task", default="gsm8k", choices=("gsm8k", "svamp"), help="GSM8K, or SVAMP (easier)")
    ap.add_argument("--n", type=int, default=16, help="the first N test questions")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", help="keep the work files in this directory")
    args = ap.parse_args()

    from tpt.core.hfmodel import resolve_model_dir
    from tpt.evaluate.builtin import get_builtin
    from tpt.evaluate.lm_eval_export import export_lm_eval
    from tpt.evaluate.prompts import prepare_task
    from tpt.evaluate.stage import EvalConfig, run

    model_dir = resolve_model_dir(args.model)
    work = Path(args.keep or tempfile.mkdtemp(prefix="tpt-vs-lm-eval-"))
    work.mkdir(parents=True, exist_ok=True)
    export_lm_eval(
        [prepare_task(get_builtin(args.task), limit=args.n)],
        work / "tasks",
        max_new_tokens=args.max_new_tokens,
    )

    t0 = time.perf_counter()
    rows = run(EvalConfig(
        models=[str(model_dir)], tasks=[args.task], output=work / "tpt.jsonl", limit=args.n,
        max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, threads=args.threads, dtype="bfloat16",
    )).rows  # fmt: skip
    t_tpt = time.perf_counter() - t0
    tpt = {r["metric"]: r["value"] for r in rows}
    tpt_samples = {s["id"]: s for s in map(json.loads, (work / "tpt.samples.jsonl").read_text().splitlines())}

    env = dict(os.environ, HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", OMP_NUM_THREADS=str(args.threads))
    cmd = [
        args.lm_eval_python, "-m", "lm_eval", "run", "--model", "hf",
        "--model_args", f"pretrained={model_dir},dtype=bfloat16", "--tasks", f"tpt_{args.task}",
        "--include_path", str(work / "tasks"), "--batch_size", str(args.batch_size), "--device", "cpu",
        "--output_path", str(work / "lm_eval"), "--log_samples",
    ]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    t_lm = time.perf_counter() - t0
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
        print(f"lm_eval failed (exit {proc.returncode}); command: {' '.join(cmd)}", file=sys.stderr)
        return 1
    [results_file] = glob.glob(str(work / "lm_eval" / "*" / "results_*.json"))
    lm = json.loads(Path(results_file).read_text())["results"][f"tpt_{args.task}"]
    [samples_file] = glob.glob(str(work / "lm_eval" / "*" / f"samples_tpt_{args.task}_*.jsonl"))
    lm_samples: dict[str, dict] = {}
    for rec in map(json.loads, Path(samples_file).read_text().splitlines()):
        entry = lm_samples.setdefault(rec["doc"]["id"], {"text": rec["resps"][0][0]})
        entry[rec["filter"]] = (rec["filtered_resps"][0], rec["exact_match"])

    print(f"\nmodel {args.model} ({model_dir}), {args.task} first {args.n} test questions, 5-shot, greedy, bf16, "
          f"max_new_tokens {args.max_new_tokens}, batch {args.batch_size}, {args.threads} threads")  # fmt: skip
    print(f"{'':<22}{'tpt':>10}{'lm-eval':>10}")
    for metric in ("accuracy", "accuracy_flexible"):
        print(f"{metric + ' (strict)' if metric == 'accuracy' else metric:<22}{tpt[metric]:10.4f}"
              f"{lm[f'exact_match,{metric}']:10.4f}")  # fmt: skip
    print(f"{'wall seconds':<22}{t_tpt:10.1f}{t_lm:10.1f}")
    same_text = same_extract = 0
    notes = []
    for qid, s in tpt_samples.items():
        other = lm_samples[qid]
        same_text += s["generation"] == other["text"]
        for metric in ("accuracy", "accuracy_flexible"):
            lm_ex, lm_ok = other[metric]
            ours = s["extracted"][metric]
            same_extract += (ours if ours is not None else "[invalid]") == lm_ex
            if bool(lm_ok) != s["correct"][metric]:
                why = (
                    "different generations"
                    if s["generation"] != other["text"]
                    else "same text, scored differently"
                )
                notes.append(f"  {qid} {metric}: tpt {ours!r} -> {s['correct'][metric]}, lm-eval {lm_ex!r} -> "
                             f"{bool(lm_ok)} (gold {s['gold']}): {why}")  # fmt: skip
    print(f"identical generations: {same_text}/{len(tpt_samples)}; identical extractions: "
          f"{same_extract}/{2 * len(tpt_samples)}")  # fmt: skip
    print("per-question score disagreements:" if notes else "per-question scores: identical")
    print("\n".join(notes))
    print(f"work files: {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
