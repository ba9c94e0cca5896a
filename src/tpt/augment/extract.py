"""Take the thinking out of a teacher's completion: keep the trajectory, drop tags and any final answer.

Four ways, recorded per record as `thinking_method`:
- reasoning_field: the server returned a separate reasoning channel (vLLM/SGLang reasoning parsers).
- think_tags: the completion holds `<think> ... </think>` itself (reasoning models without a parser).
- opened_think: we opened the assistant turn with `<think>` (non-reasoning teachers such as SmolLM2):
  everything up to `</think>` or the end is the thinking. A `<think>` later in the completion is part of
  the text (a model writing about the tag), not a second opening; one the model repeats at the very start
  is dropped.
- untagged: no tags and no prefill: the whole completion up to `</think>` is taken as the thinking.

`closed` says whether the trajectory ended rather than being cut: a reasoning-field trajectory cut by the
length limit with no answer after it is not closed. `stopped_by` says which stop ended the generation.
"""

from __future__ import annotations

from dataclasses import dataclass

from tpt.augment.backends.base import GenerationResult

OPEN, CLOSE = "<think>", "</think>"


@dataclass(frozen=True, kw_only=True, slots=True)
class Thinking:
    text: str
    method: str
    closed: bool
    """Whether the thinking ended rather than being cut (`</think>`, a stop at it or at the end of
    sequence, or a reasoning field with the answer after it)."""
    stopped_by: str | None
    """What ended the generation: a stop string (`</think>`), `eos`, `length` (the token limit), or None
    when the backend could not tell (a server that does not say)."""


def extract_thinking(result: GenerationResult) -> Thinking:
    stopped_by = "length" if result.finish_reason == "length" else result.stop
    if result.reasoning:
        # The parser split reasoning from the answer; cut by the limit with no answer after it, the
        # reasoning itself was cut.
        closed = result.finish_reason not in ("length", "repetition") or bool(result.text.strip())
        return Thinking(
            text=result.reasoning.strip(),
            method="reasoning_field",
            closed=closed,
            stopped_by=stopped_by,
        )
    text = result.text
    if result.prefilled_think:
        # The turn was opened with <think>: the completion is inside the thinking already.
        method = "opened_think"
        head = text.lstrip()
        if head.startswith(OPEN):  # the model repeated the tag it was given
            text = head[len(OPEN) :]
    elif OPEN in text:
        text = text.split(OPEN, 1)[1]
        method = "think_tags"
    else:
        method = "untagged"
    if stopped_by is None and result.text.rstrip().endswith(CLOSE):
        stopped_by = CLOSE  # the completion ends at the tag (a server that returns stop strings)
    closed = CLOSE in text
    if closed:
        text = text.split(CLOSE, 1)[0]  # what follows </think> is the final answer: dropped ([P] A.1)
    elif result.finish_reason == "stop":
        closed = True  # stopped at </think> (stop strings are not returned) or at end of sequence
    return Thinking(text=text.strip(), method=method, closed=closed, stopped_by=stopped_by)
