"""The cost of planning a `--thinking-budget`: one pass over the corpus that scores every document,
against reading and parsing the same corpus (what any pass costs), measured in the same run.

The corpus: the bundled sample documents (real text lengths, four domains), replicated with distinct ids
to N items. Prints per-document microseconds of the plain read+parse and of the plan pass
(augment/budget.py: read, parse, score, histogram, bisection), their ratio, and the share of the
budget the plan uses, for uniform and difficulty allocation; with --teacher-tokens-per-s, what the plan
pass costs next to generating the planned tokens.

    nice -n 10 python benchmarks/thinking_budget.py --documents 20000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from importlib import resources
from pathlib import Path

from tpt.augment.budget import make_plan, parse_budget
from tpt.formats.corpus import iter_items, resolve_inputs

CORPUS = Path(str(resources.files("tpt").joinpath("data/sample_corpus")))


def build(path: Path, n: int) -> None:
    docs = [json.loads(line) for f in sorted(CORPUS.glob("*.jsonl")) for line in f.read_text().splitlines()]
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            doc = docs[i % len(docs)]
            f.write(json.dumps({"id": f"{doc['id']}#{i}", "text": doc["text"]}) + "\n")


def texts(files):
    for item in iter_items(files):
        value = item.parse().get("text")
        yield value if isinstance(value, str) else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--documents", type=int, default=20000)
    ap.add_argument("--budget", default="2000/doc")
    ap.add_argument("--max-thinking-tokens", type=int, default=8192)
    ap.add_argument("--teacher-tokens-per-s", type=float, default=None, help="e.g. 1500 (one GPU)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.jsonl"
        build(path, args.documents)
        files = resolve_inputs([str(path)])
        start = time.process_time()
        n = sum(1 for _ in texts(files))
        read_us = (time.process_time() - start) / n * 1e6
        print(f"{n} documents of the bundled sample corpus ({path.stat().st_size / n:.0f} bytes each)")
        print(f"baseline: read + parse        {read_us:8.1f} us/doc of CPU")
        for allocation in ("uniform", "difficulty"):
            start = time.process_time()
            plan = make_plan(
                parse_budget(args.budget, allocation),
                texts(files),
                max_cap=args.max_thinking_tokens,
                max_words=2048,
            )
            us = (time.process_time() - start) / n * 1e6
            line = (
                f"plan ({allocation:10s})       {us:8.1f} us/doc of CPU = {us / read_us:.2f}x the read; "
                f"{plan.planned_tokens / plan.budget:.1%} of the budget planned"
            )
            if args.teacher_tokens_per_s:
                gen_us = plan.planned_tokens / n / args.teacher_tokens_per_s * 1e6
                line += f"; {us / gen_us:.2e} of generating it at {args.teacher_tokens_per_s:g} tok/s"
            print(line)


if __name__ == "__main__":
    main()
