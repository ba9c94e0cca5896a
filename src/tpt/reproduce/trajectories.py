"""Part 2: real trajectories from the embedded teacher on a sample of the bundled corpus, their length by
domain and against a documented reasoning-intensity score of each document.

Reasoning-intensity score (a transparent heuristic, not the paper's LLM-labelled taxonomy): per 100 words
of the document, the number of reasoning markers plus the number of mathematical symbols, where
- a reasoning marker is one of the words in REASONING_WORDS (connectives of argument and derivation:
  "therefore", "because", "suppose", "prove", "solve", ...), counted case-insensitively;
- a mathematical symbol is one of = < > + * / ^ | or a LaTeX command (a backslash followed by letters).
Plain prose scores near 0-2, a worked derivation 10 or more.
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from pathlib import Path
from statistics import mean, median
from typing import Any

from tpt.artifacts import write_atomic
from tpt.errors import ArtifactError, InputError

REASONING_WORDS = frozenset(
    "therefore thus hence because since if then implies implied suppose assume assuming let prove proof "
    "show shows follows consequently conclude solve solution compute calculate equation equals theorem lemma "
    "why must step".split()
)
MATH_SYMBOL = re.compile(r"[=<>+*/^|]|\\[A-Za-z]+")
WORD = re.compile(r"[A-Za-z]+")


def reasoning_intensity(text: str) -> float:
    """Reasoning markers plus math symbols per 100 words (see the module docstring)."""
    words = WORD.findall(text)
    if not words:
        return 0.0
    markers = sum(w.lower() in REASONING_WORDS for w in words)
    return 100.0 * (markers + len(MATH_SYMBOL.findall(text))) / len(words)


def sample_corpus_dir() -> Path:
    import tpt

    return Path(tpt.__file__).parent / "data" / "sample_corpus"


def select_documents(corpus_dir: Path, *, per_domain: int, seed: int = 0) -> list[dict[str, Any]]:
    """`per_domain` documents of each domain (seeded), each with its intensity score added."""
    by_domain: dict[str, list[dict[str, Any]]] = defaultdict(list)
    files = sorted(Path(corpus_dir).glob("*.jsonl"))
    if not files:
        raise InputError(f"no *.jsonl files in {corpus_dir}")
    for path in files:
        for line in path.read_text(encoding="utf-8").split("\n"):
            if line.strip():
                rec = json.loads(line)
                by_domain[str(rec.get("domain", path.stem))].append(rec)
    rng = random.Random(seed)
    chosen = []
    for domain in sorted(by_domain):
        docs = sorted(by_domain[domain], key=lambda r: str(r["id"]))
        for rec in rng.sample(docs, min(per_domain, len(docs))):
            chosen.append(
                {
                    **rec,
                    "domain": domain,
                    "reasoning_intensity": round(reasoning_intensity(rec["text"]), 3),
                }
            )
    return chosen


def write_sample(path: Path, docs: list[dict[str, Any]]) -> None:
    write_atomic(path, "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs), fsync=False)


def augment_command(
    sample: Path, out_dir: Path, *, max_thinking_tokens: int, max_doc_tokens: int
) -> list[str]:
    """`tpt augment` with the default backend (transformers) and teacher (the embedded SmolLM2)."""
    return ["augment", str(sample), "--output", str(out_dir), "--max-thinking-tokens", str(max_thinking_tokens),
            "--max-doc-tokens", str(max_doc_tokens), "--batch-size", "16", "--seed", "0", "--no-progress"]  # fmt: skip


def ranks(values: list[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank: [10, 20, 20, 5] -> [2, 3.5, 3.5, 1]."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rank correlation (Pearson on average ranks); None when either side is constant."""
    if len(x) != len(y) or len(x) < 3:
        return None
    rx, ry = ranks(x), ranks(y)
    mx, my = mean(rx), mean(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx, vy = sum((a - mx) ** 2 for a in rx), sum((b - my) ** 2 for b in ry)
    return cov / (vx * vy) ** 0.5 if vx > 0 and vy > 0 else None


def collect_part2(aug_dir: Path) -> dict[str, Any]:
    """Per-document thinking length (teacher tokens), by domain, and its correlation with intensity."""
    shards = sorted(
        p
        for p in (Path(aug_dir) / "shards").glob("*.jsonl")
        if not p.name.endswith(".failures.jsonl")
    )
    records = [
        json.loads(line)
        for p in shards
        for line in p.read_text(encoding="utf-8").split("\n")
        if line.strip()
    ]
    if not records:
        raise ArtifactError(f"no trajectories under {aug_dir}/shards; re-run `tpt reproduce`")
    docs = [{
        "id": r["id"], "domain": r["meta"].get("domain"), "title": r["meta"].get("title"),
        "reasoning_intensity": float(r["meta"].get("reasoning_intensity", 0.0)),
        "thinking_tokens": int(r["completion_tokens"]), "finish_reason": r["finish_reason"],
        "doc_tokens": int(r["doc_tokens"]), "doc_truncated": bool(r["doc_truncated"]),
        "thinking": r["thinking"], "text": r["text"], "model": r["provenance"]["model"],
    } for r in records]  # fmt: skip
    by_domain: dict[str, list[int]] = defaultdict(list)
    for d in docs:
        by_domain[d["domain"]].append(d["thinking_tokens"])
    lengths = [float(d["thinking_tokens"]) for d in docs]
    return {
        "documents": docs,
        "by_domain": {k: {"n": len(v), "mean_thinking_tokens": mean(v), "median_thinking_tokens": median(v)}
                      for k, v in sorted(by_domain.items())},
        "length_intensity_spearman": spearman([d["reasoning_intensity"] for d in docs], lengths),
        "cut_by_length_limit": sum(d["finish_reason"] == "length" for d in docs),
        "teacher": docs[0]["model"],
    }  # fmt: skip
