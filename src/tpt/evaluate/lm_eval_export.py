"""Export tasks for lm-evaluation-harness: a YAML and a JSONL per task, so `lm_eval` runs fully offline.

Each task becomes `DIR/tpt_<task>.jsonl` (rows `{id, query, gold}`: the exact prompt tpt sends, exemplars
included, rendered from the bundled data) and `DIR/tpt_<task>.yaml` (`dataset_path: json` pointing at it,
`generate_until` with the task's stops, one regex filter per metric, `exact_match`). Rendering the prompts
here keeps MMLU's same-subject exemplars and ARC's held-out exemplars, which lm-eval's YAML cannot express
without Python hooks, and guarantees both tools see byte-identical prompts. Differences that remain:
lm-eval compares strings (`18.00` != `18`; no LaTeX equivalence) and its `mc_letter` regex has no
"reply starts with the letter" fallback.
"""

from __future__ import annotations

import json
from pathlib import Path

from tpt.core.artifacts import write_atomic
from tpt.core.errors import MissingDependencyError
from tpt.core.jsontypes import JSONObject
from tpt.evaluate.extract import NUMBER_RE, SPACED_NUMBER_RE, parse_rule
from tpt.evaluate.prompts import PreparedTask

BOXED_RE = r"\\(?:boxed|fbox)\{((?:[^{}]|\{(?:[^{}]|\{[^{}]*\})*\})*)\}"
MC_RE = r"(?i:answer is)\s*:?\s*\(?\s*([A-J])"


def filter_for(rule_spec: str) -> tuple[str, int]:
    """(regex_pattern, group_select) that lm-eval's `regex` filter applies for one of tpt's rules."""
    rule = parse_rule(rule_spec)
    table = {
        "first_number": (NUMBER_RE.pattern, 0),
        "last_number": (NUMBER_RE.pattern, -1),
        "first_spaced_number": (SPACED_NUMBER_RE.pattern, 0),
        "last_spaced_number": (SPACED_NUMBER_RE.pattern, -1),
        "boxed": (BOXED_RE, -1),
        "mc_letter": (MC_RE, -1),
    }
    if rule.kind in table:
        return table[rule.kind]
    assert rule.pattern is not None
    return rule.pattern.pattern, 0 if rule.kind == "regex" else -1


def task_yaml(prepared: PreparedTask, data_file: Path, max_new_tokens: int) -> JSONObject:
    task = prepared.task
    ignore = [",", "\\$", "\\.$"] + ([" "] if any("spaced" in r for _, r in task.metrics) else [])
    return {
        "task": f"tpt_{task.name}",
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data_file.resolve())}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "query",
        "doc_to_target": "gold",
        "num_fewshot": 0,
        "generation_kwargs": {
            "until": list(task.stop),
            "do_sample": False,
            "max_gen_toks": max_new_tokens,
        },
        "filter_list": [
            {
                "name": name,
                "filter": [
                    {"function": "regex", "regex_pattern": pattern, "group_select": group},
                    {"function": "take_first"},
                ],
            }
            for name, rule in task.metrics
            for pattern, group in [filter_for(rule)]
        ],
        "metric_list": [
            {
                "metric": "exact_match",
                "aggregation": "mean",
                "higher_is_better": True,
                "ignore_case": True,
                "ignore_punctuation": False,
                "regexes_to_ignore": ignore,
            }
        ],
        "metadata": {"version": 1.0, "tpt_task": task.name, "tpt_compare": task.compare},
    }


def export_lm_eval(
    prepared_tasks: list[PreparedTask], out_dir: Path, *, max_new_tokens: int | None = None
) -> list[Path]:
    """Write the YAML + JSONL pair of every task; returns the YAML paths."""
    try:
        import yaml
    except ImportError:
        raise MissingDependencyError("pyyaml", "--export-lm-eval") from None

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for prep in prepared_tasks:
        name = f"tpt_{prep.task.name}"
        data_file = out_dir / f"{name}.jsonl"
        rows = (
            json.dumps({"id": ex.id, "query": prompt, "gold": ex.gold}, ensure_ascii=False)
            for ex, prompt in zip(prep.examples, prep.prompts, strict=True)
        )
        write_atomic(data_file, "".join(r + "\n" for r in rows), fsync=False)
        spec = task_yaml(prep, data_file, max_new_tokens or prep.task.max_new_tokens)
        yaml_path = out_dir / f"{name}.yaml"
        write_atomic(
            yaml_path,
            yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=120),
            fsync=False,
        )
        written.append(yaml_path)
    return written
