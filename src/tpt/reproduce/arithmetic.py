"""The arithmetic world (testbed.py): word problems, a pool of documents that state their answers (half of
them worked examples), the oracle's step-by-step thinking, held-out operand tuples at test.

Here a shuffled trajectory still teaches correct, self-contained arithmetic, and the test needs no content
of any one document: the pairing of thinking and document should not matter. So this world is the
negative control for pairing (tpt vs tpt-shuffled: no measurable effect expected), beside the knowledge
world's positive control, and its tpt vs raw contrast measures "more worked steps help".

Tasks: `testbed-cot` (primary: the question, then "Solution:" as the worked examples write it; the number
after the last "Answer:"), `testbed-think` (the question, then "Answer:" and the model continues: in
training `<think>` follows the document's "Answer: N.", so this prompt lets the student write its answer
and then think where training placed `<think>`; the last number before `</think>`).
"""

from __future__ import annotations

import json
from pathlib import Path

from tpt.core.artifacts import write_atomic
from tpt.reproduce.problems import SOLUTION
from tpt.reproduce.testbed import CorpusConfig, heldout_problems, make_world, pool, write_corpus
from tpt.reproduce.testbed_tokenizer import EOS
from tpt.reproduce.worlds import WorldPlan, write_tasks

WORLD = "arithmetic"
COT_TASK, THINK_TASK = "testbed-cot", "testbed-think"


def prepare(root: Path, config: CorpusConfig, *, test_per_stratum: int, max_new_tokens: int) -> WorldPlan:
    """Write worlds/arithmetic/{corpus,test}.jsonl and tasks.json; return the world's plan.

    Its statistic is the factor (issue 23 item 4): raw's accuracy rises on `testbed-cot` (the worked
    examples teach it), so tokens-to-level is defined for every arm.
    """
    world = make_world(config)
    docs = pool(config, world)
    counts = write_corpus(root / "corpus.jsonl", docs, kind="raw")
    rows = heldout_problems(config, world, per_level=test_per_stratum, seed=config.test_seed)
    for r in rows:
        r["stratum"] = f"level-{r['level']}"
    write_atomic(root / "test.jsonl", "".join(json.dumps(r) + "\n" for r in rows), fsync=False)
    common = {"question_field": "question", "answer_field": "answer", "id_field": "id"}
    tasks = write_tasks(root, [
        {"name": COT_TASK, **common, "prompt": EOS + "{question} " + SOLUTION, "stop": ["<think>", EOS],
         "max_new_tokens": max_new_tokens, "extract": r"last_regex:Answer:\s*(-?\d+)",
         "description": "chain of thought: the working after 'Solution:' as the worked examples write it, then "
                        "the number after the last 'Answer:'"},
        {"name": THINK_TASK, **common, "prompt": EOS + "{question} Answer:", "stop": ["</think>", EOS],
         "max_new_tokens": max_new_tokens + 16, "extract": "last_number",
         "description": "the question and 'Answer:'; the student writes its answer and then `<think>` where "
                        "training placed it (after the document's answer); the last number before </think>"},
    ])  # fmt: skip
    distinct: dict[str, set[str]] = {}
    for r in rows:
        distinct.setdefault(r["stratum"], set()).add(r["computation"])
    facts = {"pool_documents": len(docs), "corpus": counts, "test_items": len(rows),
             "test_distinct_computations": {k: len(v) for k, v in sorted(distinct.items())},
             "worked_fraction": config.worked_fraction, "tasks": tasks}  # fmt: skip
    return WorldPlan(name=WORLD, root=root, tasks=(COT_TASK, THINK_TASK), statistic="factor", facts=facts,
                     think_endpoint="`testbed-think`: the question and 'Answer:', the student writes its answer, "
                     "then `<think>` where training placed it (after the document's answer)")  # fmt: skip
