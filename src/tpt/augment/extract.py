"""Take the thinking out of a teacher's completion: keep the trajectory, drop tags and any final answer.

Four ways, recorded per record as `thinking_method`:
- reasoning_field: the server returned a separate reasoning channel (vLLM/SGLang reasoning parsers).
- think_tags: the completion holds `<think> ... </think>` itself (reasoning models without a parser).
- opened_think: we opened the assistant turn with `<think>` (non-reasoning teachers such as SmolLM2):
  everything up to `</think>` or the end is the thinking.
- untagged: no tags and no prefill: the whole completion up to `</think>` is taken as the thinking.
"""

from __future__ import annotations

from dataclasses import dataclass

from tpt.augment.backend import GenerationResult

OPEN, CLOSE = "<think>", "</think>"


@dataclass(frozen=True, kw_only=True, slots=True)
class Thinking:
    text: str
    method: str
    closed: bool
    """Whether an explicit end of thinking was seen (`</think>`, a stop at it, or a reasoning field)."""


def extract_thinking(result: GenerationResult) -> Thinking:
    if result.reasoning:
        return Thinking(text=result.reasoning.strip(), method="reasoning_field", closed=True)
    text = result.text
    if OPEN in text:
        text = text.split(OPEN, 1)[1]
        method = "think_tags"
    else:
        method = "opened_think" if result.prefilled_think else "untagged"
    closed = CLOSE in text
    if closed:
        text = text.split(CLOSE, 1)[0]  # what follows </think> is the final answer: dropped ([P] A.1)
    elif result.finish_reason == "stop":
        closed = True  # stopped at </think> (stop strings are not returned) or at end of sequence
    return Thinking(text=text.strip(), method=method, closed=closed)
