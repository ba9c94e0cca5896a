"""The teacher's prompt as the model sees it: its chat template, opened with `<think>` when asked.

Shared by the in-process backends (transformers, vllm); the openai backend leaves the template to the
server and prefills `<think>` as an assistant turn instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from tpt.augment.backends.base import GenerationRequest, GenerationResult
from tpt.core.errors import ConfigError

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
    return "<think>" not in text  # a reasoning model's template knows the tag and opens the turn itself


def prepare_prompt(
    tok: Any, request: GenerationRequest, open_think: bool, max_tokens: int, max_model_len: int
) -> tuple[list[int], bool, int] | GenerationResult:
    """(prompt ids, opened with <think>?, thinking budget), or the error result of this request alone.

    The budget is capped where the context ends, so a long document gets a "length" result rather than
    a request the engine refuses; shared by the transformers and vllm backends."""
    try:
        ids, prefilled = encode_prompt(tok, request.messages, open_think)
    except Exception as exc:  # a malformed message list fails this request only
        return GenerationResult(key=request.key, error=f"chat template failed: {exc}")
    budget = min(max_tokens, max_model_len - len(ids))
    if budget < 1:
        return GenerationResult(
            key=request.key,
            prompt_tokens=len(ids),
            error=f"prompt has {len(ids)} tokens; the model context is {max_model_len}",
        )
    return ids, prefilled, budget


def encode_prompt(tok: Any, messages: Iterable[dict[str, str]], open_think: bool) -> tuple[list[int], bool]:
    """The prompt's ids, with every message's content encoded as text (core/control_tokens.py), and whether it
    ends opened with `<think>`.

    Content without control strings (nearly all) is encoded with the rendered prompt in one piece,
    exactly as before. Otherwise the template is rendered a second time with a marker in place of
    each content, which splits the prompt into template parts (encoded with their control tokens)
    and content parts (encoded as text); the parts must add up to the prompt rendered with the real
    contents (as given, or trimmed by the template), else this request fails rather than let its
    content act as control."""
    from tpt.core.control_tokens import controls, encode_text

    messages = list(messages)
    prompt, prefilled = render_prompt(tok, messages, open_think)
    found = controls(tok)
    contents = [str(m.get("content") or "") for m in messages]
    if not any(found.search(c) for c in contents):
        return tok.encode(prompt, add_special_tokens=False), prefilled
    import secrets

    nonce = secrets.token_hex(8)
    marks = [f"TPTCONTENT{nonce}N{i}E" for i in range(len(messages))]
    skeleton, _ = render_prompt(
        tok, [{**m, "content": mark} for m, mark in zip(messages, marks, strict=True)], open_think
    )
    parts = re.split("(" + "|".join(marks) + ")", skeleton)
    template_parts, order = parts[0::2], parts[1::2]
    if sorted(order) != sorted(marks) or len(set(order)) != len(order):
        raise ValueError("the chat template drops or repeats a message's content; cannot keep it as text")
    which = [marks.index(m) for m in order]
    for shape in (str, str.strip):
        pieces = [shape(contents[i]) for i in which]
        if "".join(t + c for t, c in zip(template_parts, [*pieces, ""], strict=True)) == prompt:
            break
    else:
        raise ValueError("the chat template changes a message's content; cannot keep it as text")
    ids: list[int] = []
    for t, c in zip(template_parts, [*pieces, ""], strict=True):
        if t:
            ids += tok.encode(t, add_special_tokens=False)
        if c:
            ids += encode_text(tok, c)
    return ids, prefilled


def render_prompt(tokenizer: Any, messages: Iterable[dict[str, str]], open_think: bool) -> tuple[str, bool]:
    """The chat-templated prompt, opened with `<think>` when asked; and whether it ends opened.

    A reasoning model's template may open the thinking itself (generation prompt ending in
    `<think>`); that counts as opened too, since the completion then holds the thinking without its
    opening tag.
    """
    prompt = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    if open_think and not prompt.rstrip().endswith("<think>"):
        prompt += THINK_OPEN
    return prompt, prompt.rstrip().endswith("<think>")
