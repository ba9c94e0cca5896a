"""What the loop guard saves: the embedded teacher with the guard on against off, and the openai path.

1. embedded: `tpt augment` with the embedded teacher (SmolLM2-135M-Instruct, transformers backend) on
   the bundled sample corpus (--docs, all 48 by default) at --max-thinking-tokens, in arms that differ
   in one setting each, same seeds: `off` (--loop-guard off), `on` (the default guard, --loop-policy
   keep-prefix so the stopped trajectories stay visible), and `penalty` (--repetition-penalty, guard
   off: the usual sampling control beside the guard). Each arm's records go through `tpt validate`
   (kept = passes it). Per arm: generated tokens, wall time, generated tokens per kept trajectory,
   share stopped by the guard; for the stopped ones, whether the same document passed validation in
   the `off` arm (had it run on).
2. openai: `tpt augment --backend openai` against the local stub (tpt.testing.openai_stub) in loop
   mode, guard on against off: the tokens the server generated (the stub counts what it produced
   before the client closed each stream).

Ratios are printed (on / off). The machine is shared and slow: run it niced, in the background.

    nice -n 10 .venv/bin/python benchmarks/loop_guard.py --docs 48 --max-thinking-tokens 1024 \
        --out /tmp/tpt-loop-guard > /tmp/tpt-loop-guard.log 2>&1 &
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "src" / "tpt" / "data" / "sample_corpus"
TPT = [sys.executable, "-m", "tpt"]


def corpus(path: Path, docs: int) -> Path:
    """The first `docs` documents of the bundled corpus, taken round-robin over its four sources."""
    sources = [f.read_text(encoding="utf-8").splitlines() for f in sorted(CORPUS.glob("*.jsonl"))]
    lines = [line for group in zip(*sources, strict=True) for line in group][:docs]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def records(out: Path) -> list[dict]:
    rows = []
    for shard in sorted((out / "shards").glob("part-*.jsonl")):
        if not shard.name.endswith(".failures.jsonl"):
            rows += [json.loads(line) for line in shard.read_text(encoding="utf-8").splitlines() if line]
    return rows


def validated(out: Path, val: Path, *extra: str) -> dict[str, str | None]:
    """id -> the reason `tpt validate` rejected the record, or None when it passed."""
    subprocess.run(
        [*TPT, "validate", str(out), "--output", str(val), *extra], check=True, capture_output=True
    )
    verdicts: dict[str, str | None] = {}
    for path in sorted(val.rglob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if "id" in row and ("reason" in row or "thinking" in row):
                verdicts[str(row["id"])] = row.get("reason")
    return verdicts


def run_arm(name: str, src: Path, base: Path, args: argparse.Namespace, extra: list[str]) -> dict:
    out, val = base / name, base / f"{name}.val"
    cmd = [*TPT, "augment", str(src), "--output", str(out), "--backend", "transformers",
           "--max-thinking-tokens", str(args.max_thinking_tokens), "--seed", str(args.seed),
           "--batch-size", str(args.batch_size), "--no-progress", *extra]  # fmt: skip
    if args.threads:
        cmd += ["--engine-arg", f"threads={args.threads}"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - start
    rows = records(out)
    verdicts = validated(out, val)
    # Judged on everything but the cut itself: the loops are then the repetition check's to find.
    cut = "truncated" if name != "on" else "loop_stopped"
    uncut = validated(out, base / f"{name}.val-uncut", "--disable-check", cut)
    kept = sum(verdicts.get(str(r["id"]), "missing") is None for r in rows)
    stopped = [r for r in rows if r["finish_reason"] == "repetition"]
    tokens = sum(r["completion_tokens"] for r in rows)
    return {
        "arm": name,
        "command": " ".join(cmd[2:]),
        "docs": len(rows),
        "wall_s": round(wall, 1),
        "generated_tokens": tokens,
        "kept": kept,
        "tokens_per_kept": round(tokens / kept, 1) if kept else None,
        "stopped": len(stopped),
        "length": sum(r["finish_reason"] == "length" for r in rows),
        "stopped_ids": [str(r["id"]) for r in stopped],
        "reasons": _count(v for v in verdicts.values()),
        "verdicts": verdicts,
        "uncut_check": cut,
        "uncut_reasons": _count(uncut.values()),
        "uncut_verdicts": uncut,
    }


def _count(values) -> dict:
    out: dict = {}
    for v in values:
        out[str(v)] = out.get(str(v), 0) + 1
    return out


def openai_arms(src: Path, base: Path, args: argparse.Namespace) -> dict:
    from tpt.cli import main as tpt_main
    from tpt.testing.openai_stub import StubConfig, StubServer, augment_argv

    results = {}
    for arm, extra in (("off", ["--loop-guard", "off"]), ("on", [])):
        # 2 ms a token (500 tokens/s a stream): a server generates as it streams, so a close stops it
        config = StubConfig(
            latency_ms=1, token_ms=2, words=200, loop_after=args.stub_loop_after, loop_rate=0.5
        )
        with StubServer(config) as stub:
            argv = augment_argv(src, base / f"openai-{arm}", stub.base_url, "--max-thinking-tokens",
                                str(args.max_thinking_tokens), "--no-progress", *extra)  # fmt: skip
            if tpt_main(argv) != 0:
                raise SystemExit(f"tpt augment against the stub failed ({arm})")
            results[arm] = {
                "produced": stub.stats.tokens_produced,
                "streams_closed": stub.stats.streams_closed,
            }
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=48)
    p.add_argument("--max-thinking-tokens", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--repetition-penalty", type=float, default=1.2, help="of the penalty arm")
    p.add_argument("--arms", default="off,on,penalty", help="embedded arms to run (comma-separated)")
    p.add_argument("--stub-loop-after", type=int, default=64, help="openai: the stub loops after this")
    p.add_argument("--part", choices=["all", "embedded", "openai"], default="all")
    p.add_argument("--out", type=Path, default=Path("/tmp/tpt-loop-guard"))
    args = p.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"{args.out} is not empty: pass a fresh --out")
    args.out.mkdir(parents=True, exist_ok=True)
    src = corpus(args.out / "corpus.jsonl", args.docs)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    started = time.perf_counter()
    openai = openai_arms(src, args.out, args) if args.part in ("all", "openai") else {}
    arms = {
        "off": ["--loop-guard", "off"],
        "on": ["--loop-policy", "keep-prefix"],
        "penalty": ["--loop-guard", "off", "--repetition-penalty", str(args.repetition_penalty)],
    }
    embedded = {}
    if args.part in ("all", "embedded"):  # load the teacher once untimed: every arm then starts warm
        warm = [*TPT, "augment", str(src), "--output", str(args.out / "warm-up"), "--limit", "1"]
        subprocess.run(
            [*warm, "--max-thinking-tokens", "1", "--no-progress"], check=True, capture_output=True
        )
    for name in args.arms.split(",") if args.part in ("all", "embedded") else []:
        embedded[name] = run_arm(name, src, args.out, args, arms[name])
        print(json.dumps({k: v for k, v in embedded[name].items() if k != "verdicts"}), flush=True)

    report = {"openai": openai, "embedded": embedded, "wall_s": round(time.perf_counter() - started, 1)}
    print()
    if openai:
        print(f"openai against the stub ({args.docs} docs, half loop after {args.stub_loop_after} words):")
        off, on = openai["off"]["produced"], openai["on"]["produced"]
        closed = openai["on"]["streams_closed"]
        print(f"  tokens the server generated: off {off}, on {on}: {on / off:.2f}x ({closed} streams closed)")
    if "off" in embedded:
        base = embedded["off"]
        print(f"embedded teacher, {args.docs} docs at --max-thinking-tokens {args.max_thinking_tokens}:")
        for name, arm in embedded.items():
            line = (
                f"  {name:8s} tokens {arm['generated_tokens']:7d} ({arm['generated_tokens'] / base['generated_tokens']:.2f}x)"
                f"  wall {arm['wall_s']:7.1f}s ({arm['wall_s'] / base['wall_s']:.2f}x)"
                f"  kept {arm['kept']:2d}/{arm['docs']}  tokens/kept {arm['tokens_per_kept']}"
            )
            if arm["tokens_per_kept"] and base["tokens_per_kept"]:
                line += f" ({arm['tokens_per_kept'] / base['tokens_per_kept']:.2f}x)"
            line += f"  stopped {arm['stopped']} ({arm['stopped'] / max(arm['docs'], 1):.0%})  length {arm['length']}"
            print(line)
        if "on" in embedded:
            stopped = embedded["on"]["stopped_ids"]
            passed = [i for i in stopped if base["verdicts"].get(i, "missing") is None]
            print(
                f"  stopped by the guard that passed validation in the off arm: {len(passed)} of {len(stopped)} {passed}"
            )
            print(f"  their verdicts in the off arm: {_count(base['verdicts'].get(i) for i in stopped)}")
            print(
                "  the same, judged with truncated disabled (the full trajectory on its merits): "
                f"{_count(base['uncut_verdicts'].get(i) for i in stopped)}"
            )
            kept_prefix = [i for i in stopped if embedded["on"]["uncut_verdicts"].get(i, "x") is None]
            print(f"  kept prefixes that pass every other check (loop_stopped disabled): {len(kept_prefix)}")
        for name, arm in embedded.items():
            print(
                f"  {name}: verdicts {arm['reasons']}; with {arm['uncut_check']} disabled {arm['uncut_reasons']}"
            )
    (args.out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(f"report: {args.out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
