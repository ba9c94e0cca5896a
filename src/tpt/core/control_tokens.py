"""Document content is data: control-token strings inside a document never act as control tokens.

A web page can contain `<|im_end|>\\n<|im_start|>assistant ...`. Encoded with the tokenizer's added
tokens matched, that text becomes real chat-turn tokens and rewrites the teacher's conversation. So:

- **In-process teachers** (transformers, vllm): tpt renders the chat template itself and encodes the
  document's part with `text_only(tokenizer)`, a copy of the tokenizer whose control tokens are not
  matched: the string `<|im_end|>` becomes the ids of its characters, as any other text would
  (`augment/chat.py`'s `encode_prompt`). Truncation counts documents the same way.
- **Servers that template themselves** (the openai backend): what the server does with the text is out
  of tpt's hands, so documents that contain the teacher's control strings (the added tokens of
  `--tokenizer` when given, else the markers of the common chat templates) get a policy
  (`--control-tokens`): `neutralize` (default: a zero-width space after the first character of each
  occurrence, so no tokenizer matches it; the record says how many of which were neutralized),
  `reject` (an input failure, `control_tokens`, before any request) or `pass` (sent as is; recorded).
- **The student** (`tpt pack`): documents and thinking are encoded with `text_only` of the student
  tokenizer, so a document's `<|endoftext|>` is text, not the end of the sample.

Which added tokens count as control tokens: all of them except those made of whitespace only (some
tokenizers add whitespace runs as tokens; those are text however they are encoded).
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Iterable
from typing import Any

from tpt.core.errors import ConfigError

POLICIES = ("neutralize", "reject", "pass")
NEUTRALIZER = "\u200b"
"""ZERO WIDTH SPACE, put after the first character of a neutralized control string."""

COMMON_MARKERS = (
    # ChatML (Qwen, SmolLM, Yi, ...) and the GPT family
    "<|im_start|>", "<|im_end|>", "<|im_sep|>", "<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|endofprompt|>",
    # Llama 3
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
    "<|eom_id|>", "<|python_tag|>", "<|finetune_right_pad_id|>",
    # Llama 2, Mistral
    "[INST]", "[/INST]", "<<SYS>>", "<</SYS>>", "<s>", "</s>", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
    "[AVAILABLE_TOOLS]", "[TOOL_CALLS]", "[TOOL_RESULTS]",
    # Gemma
    "<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>",
    # Phi-3
    "<|system|>", "<|user|>", "<|assistant|>", "<|end|>",
    # gpt-oss (harmony)
    "<|start|>", "<|message|>", "<|channel|>", "<|return|>", "<|call|>", "<|constrain|>",
    # DeepSeek
    "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>",
    # reasoning and tool tags
    "<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>",
)  # fmt: skip
# Any `<|name|>` or `<｜name｜>` token: the families above use these forms for many more tokens.
_GENERIC = (r"<\|[^\s|<>]{1,64}\|>", r"<｜[^\s｜]{1,64}｜>")


class ControlStrings:
    """A set of control strings, found and neutralized in texts."""

    def __init__(self, strings: Iterable[str], *, generic: bool = False) -> None:
        self.strings = tuple(sorted({s for s in strings if len(s) >= 2}, key=lambda s: (-len(s), s)))
        parts = [re.escape(s) for s in self.strings] + (list(_GENERIC) if generic else [])
        self._pattern = re.compile("|".join(parts)) if parts else None
        self.source = ""
        """Where the strings come from (for messages): the tokenizer, or the common markers."""

    def find(self, text: str) -> Counter[str]:
        """How often each control string occurs in `text` (empty: none)."""
        if self._pattern is None:
            return Counter()
        return Counter(m.group(0) for m in self._pattern.finditer(text))

    def search(self, text: str) -> bool:
        return self._pattern is not None and self._pattern.search(text) is not None

    def neutralize(self, text: str) -> str:
        """`text` with a zero-width space after the first character of every control string."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: m.group(0)[0] + NEUTRALIZER + m.group(0)[1:], text)


def common_markers() -> ControlStrings:
    cs = ControlStrings(COMMON_MARKERS, generic=True)
    cs.source = "the markers of common chat templates (pass --tokenizer for the teacher's own)"
    return cs


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ConfigError(f"--control-tokens must be one of {', '.join(POLICIES)}, got {policy!r}")
    return policy


def _rust(tokenizer: Any) -> Any | None:
    """The `tokenizers.Tokenizer` of a tokenizer (itself, or a fast HF tokenizer's backend)."""
    if hasattr(tokenizer, "encode_batch"):
        return tokenizer
    return tokenizer.backend_tokenizer if getattr(tokenizer, "is_fast", False) else None


def _is_control(content: str) -> bool:
    return bool(content) and not content.isspace()


def control_strings_of(tokenizer: Any) -> ControlStrings:
    """The tokenizer's control strings: its added tokens, whitespace-only ones left out."""
    rust = _rust(tokenizer)
    if rust is not None:
        contents = [t.content for t in rust.get_added_tokens_decoder().values()]
    else:  # a slow HF tokenizer
        contents = [str(t) for t in getattr(tokenizer, "added_tokens_decoder", {}).values()]
    cs = ControlStrings(c for c in contents if _is_control(c))
    cs.source = "the teacher tokenizer's added tokens"
    return cs


_CACHE: dict[int, tuple[Any, Any, ControlStrings]] = {}
_CACHE_LOCK = threading.Lock()


def _cached(tokenizer: Any) -> tuple[Any, ControlStrings]:
    """(text-only Rust tokenizer or None for a slow tokenizer, control strings), built once per object."""
    with _CACHE_LOCK:
        hit = _CACHE.get(id(tokenizer))
        if hit is not None and hit[0] is tokenizer:
            return hit[1], hit[2]
    rust = _rust(tokenizer)
    text = None
    if rust is not None:
        from tokenizers import Tokenizer

        spec = json.loads(rust.to_str())
        spec["added_tokens"] = [t for t in spec.get("added_tokens") or [] if not _is_control(t["content"])]
        spec["post_processor"] = None  # nothing is added around a text: no BOS, no EOS
        spec["truncation"] = spec["padding"] = None
        text = Tokenizer.from_str(json.dumps(spec))
    controls = control_strings_of(tokenizer)
    with _CACHE_LOCK:
        _CACHE[id(tokenizer)] = (tokenizer, text, controls)  # the object is kept: its id stays unique
    return text, controls


def text_only(tokenizer: Any) -> Any | None:
    """A `tokenizers.Tokenizer` that encodes like `tokenizer` but matches none of its control tokens
    (None for a slow, Python-only tokenizer: use `encode_text`)."""
    return _cached(tokenizer)[0]


def controls(tokenizer: Any) -> ControlStrings:
    return _cached(tokenizer)[1]


def encode_text(tokenizer: Any, text: str) -> list[int]:
    """Ids of `text` as text: control-token strings in it are encoded as their characters."""
    fast = text_only(tokenizer)
    if fast is not None:
        return fast.encode(text, add_special_tokens=False).ids
    return tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
