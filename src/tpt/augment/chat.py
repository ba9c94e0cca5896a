"""The teacher's prompt as the model sees it: its chat template, opened with `<think>` when asked.

Shared by the in-process backends (transformers, vllm); the openai backend leaves the template to the
server and prefills `<think>` as an assistant turn instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tpt.augment.backend import GenerationRequest, GenerationResult
from tpt.errors import ConfigError

THINK_OPEN = "<think>\n"


def wants_open_think(tokenizer: Any, open_think: str) -> bool:
    """Resolve --open-think: auto opens the turn when the chat template has no `<think>`."""
    if open_think != "auto":
        return open_think == "on"
    template = tokenizer.chat_template
    if template is None:
        raise ConfigError(
            "the teacher's tokenizer has no chat template; tpt sends the prompt through it, so use "
            "an instruct or reasoning model"
        )
    text = template if isinstance(template, str) else " ".join(map(str, dict(template).values()))
    return (
        "<think>" not in text
    )  # a reasoning model's template knows the tag and opens the turn itself


def prepare_prompt(
    tok: Any, request: GenerationRequest, open_think: bool, max_tokens: int, max_model_len: int
) -> tuple[list[int], bool, int] | GenerationResult:
    """(prompt ids, opened with <think>?, thinking budget), or the error result of this request alone.

    The budget is capped where the context ends, so a long document gets a "length" result rather than
    a request the engine refuses; shared by the transformers and vllm backends."""
    try:
        prompt, prefilled = render_prompt(tok, request.messages, open_think)
    except Exception as exc:  # a malformed message list fails this request only
        return GenerationResult(key=request.key, error=f"chat template failed: {exc}")
    ids = tok.encode(prompt, add_special_tokens=False)
    budget = min(max_tokens, max_model_len - len(ids))
    if budget < 1:
        return GenerationResult(
            key=request.key,
            prompt_tokens=len(ids),
            error=f"prompt has {len(ids)} tokens; the model context is {max_model_len}",
        )
    return ids, prefilled, budget


def render_prompt(
    tokenizer: Any, messages: Iterable[dict[str, str]], open_think: bool
) -> tuple[str, bool]:
    """The chat-templated prompt, opened with `<think>` when asked; and whether it ends opened.

    A reasoning model's template may open the thinking itself (generation prompt ending in
    `<think>`); that counts as opened too, since the completion then holds the thinking without its
    opening tag.
    """
    prompt = tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=True
    )
    if open_think and not prompt.rstrip().endswith("<think>"):
        prompt += THINK_OPEN
    return prompt, prompt.rstrip().endswith("<think>")
