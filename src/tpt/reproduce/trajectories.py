"""Part 2 (`--scale full`): real trajectories from the embedded teacher on the bundled sample corpus,
their length by domain, beside a documented reasoning-intensity score of each document.

Reasoning-intensity score (a transparent heuristic, not the paper's LLM-labelled taxonomy): per 100 words
of the document, the number of reasoning markers, i.e. words in REASONING_WORDS (connectives of argument
and derivation: "therefore", "because", "suppose", "prove", "solve", ...), counted case-insensitively.
Symbols are not counted, since code's punctuation would pass for mathematics. No correlation of length
with this score is reported: the bundled corpus has 48 documents (see the report).
"""

from __future__ import annotations

import json
import random
import re
from collections import defaultdict
from pathlib import Path
from statistics import mean, median
from typing import Any

from tpt.core.artifacts import write_atomic
from tpt.core.errors import ArtifactError, InputError
from tpt.formats.reading import augment_shards, read_augmented

REASONING_WORDS = frozenset(
    "therefore thus hence because since if then implies implied suppose assume assuming let prove proof "
    "show shows follows consequently conclude solve solution compute calculate equation equals theorem lemma "
    "why must step".split()
)
WORD = re.compile(r"[A-Za-z]+")


def reasoning_intensity(text: str) -> float:
    """Reasoning markers per 100 words (see the module docstring). Symbols are not counted: code's
    punctuation (`=`, `+`, `*`, `|`) would pass for mathematics."""
    words = WORD.findall(text)
    if not words:
        return 0.0
    markers = sum(w.lower() in REASONING_WORDS for w in words)
    return 100.0 * markers / len(words)


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


def collect_part2(aug_dir: Path) -> dict[str, Any]:
    """Per-document thinking length (teacher tokens), by domain, and how many hit the cap."""
    records = list(read_augmented(augment_shards(Path(aug_dir))))
    if not records:
        raise ArtifactError(f"no trajectories under {aug_dir}/shards; re-run `tpt reproduce`")
    docs = [{
        "id": r.id, "domain": r.meta.get("domain"), "title": r.meta.get("title"),
        "reasoning_intensity": float(r.meta.get("reasoning_intensity", 0.0)),
        "thinking_tokens": r.completion_tokens, "finish_reason": r.finish_reason,
        "doc_tokens": r.doc_tokens, "doc_truncated": r.doc_truncated,
        "thinking": r.thinking, "text": r.text, "model": r.provenance.model,
    } for r in records]  # fmt: skip
    by_domain: dict[str, list[int]] = defaultdict(list)
    for d in docs:
        by_domain[d["domain"]].append(d["thinking_tokens"])
    return {
        "documents": docs,
        "by_domain": {k: {"n": len(v), "mean_thinking_tokens": mean(v), "median_thinking_tokens": median(v)}
                      for k, v in sorted(by_domain.items())},
        "cut_by_length_limit": sum(d["finish_reason"] == "length" for d in docs),
        "teacher": docs[0]["model"],
    }  # fmt: skip
