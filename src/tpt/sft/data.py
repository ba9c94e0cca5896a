"""Chat-format SFT data: `messages` lists -> chat template -> token ids with an assistant-only loss mask,
packed into rows where no example attends to another.

Packing choice: examples are packed next-fit into rows of seq_len, with position ids restarting at 0
for each example. transformers turns restarting position ids into a block-diagonal causal mask
(`find_packed_sequence_indices`), so an example sees only itself, as the paper's SFT requires, while
rows stay full (padding each example to seq_len would waste most of each row on short GSM8K answers).
The target at an example's last position (the next example's first token) is never trained on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tpt.core.errors import InputError
from tpt.formats.packfile import KIND_ASSISTANT as ASSISTANT_KIND
from tpt.train.data import IGNORE_INDEX, RowBatch, shift_targets

# ChatML, used when the tokenizer has no chat template of its own (a fresh student tokenizer).
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_CALCULATOR = re.compile(r"<<[^<>]*>>")


@dataclass(frozen=True, kw_only=True, slots=True)
class EncodedExample:
    ids: list[int]
    assistant: list[bool]  # True where the token is part of an assistant turn (trained on)


@dataclass(kw_only=True)
class SftStats:
    """What preparation did with the examples (recorded in the manifest)."""

    examples: int = 0
    dropped_too_long: int = 0
    rows: int = 0
    assistant_tokens: int = 0
    tokens: int = 0
    by_format: dict[str, int] = field(default_factory=dict)


def gsm8k_messages(question: str, answer: str) -> list[dict[str, str]]:
    """A GSM8K problem as a chat: the question from the user, the worked solution from the assistant.

    Calculator annotations `<<48/2=24>>` are removed (they are tool traces, not prose); the final
    `#### 72` line is kept, so a grader can read the answer as GSM8K's own format defines it.
    """
    return [
        {"role": "user", "content": question.strip()},
        {"role": "assistant", "content": _CALCULATOR.sub("", answer).strip()},
    ]


def read_conversations(
    paths: list[Path], *, max_examples: int | None = None
) -> Iterator[tuple[list[dict], str]]:
    """(messages, format) per JSONL line: `{"messages": [...]}` or GSM8K-style `{"question", "answer"}`."""
    n = 0
    for path in paths:
        try:
            lines = (
                Path(path).read_text(encoding="utf-8").split("\n")
            )  # not splitlines(): U+2028 may sit inside a JSON string
        except OSError as exc:
            raise InputError(f"cannot read SFT data {path}: {exc}") from None
        for lineno, line in enumerate(lines, 1):
            if not line.strip():
                continue
            if max_examples is not None and n >= max_examples:
                return
            where = f"{path}:{lineno}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{where}: not valid JSON ({exc})") from None
            if isinstance(obj, dict) and "messages" in obj:
                yield _check_messages(obj["messages"], where), "messages"
            elif (
                isinstance(obj, dict)
                and isinstance(obj.get("question"), str)
                and isinstance(obj.get("answer"), str)
            ):
                yield gsm8k_messages(obj["question"], obj["answer"]), "question_answer"
            else:
                raise InputError(f"{where}: expected a `messages` list or `question`/`answer` strings")
            n += 1


def _check_messages(messages: Any, where: str) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise InputError(f"{where}: `messages` must be a non-empty list")
    for m in messages:
        if not (isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            raise InputError(f"{where}: every message needs string `role` and `content`, got {m!r}")
    roles = [m["role"] for m in messages]
    if "assistant" not in roles:
        raise InputError(f"{where}: no assistant turn, so nothing to train on")
    if roles[0] == "assistant":
        raise InputError(f"{where}: the first turn is the assistant's; start with a system or user turn")
    return messages


def encode_conversation(messages: list[dict], tokenizer: Any, template: str | None) -> EncodedExample:
    """Token ids of the templated chat, and which of them belong to assistant turns.

    Each assistant turn is located as a character span: it starts where the chat so far, rendered with
    the generation prompt, ends, and ends where the chat up to and including it ends; so the span holds
    the reply and its end-of-turn marker (e.g. `72<|im_end|>\\n`), which the model must learn to emit.
    """

    def render(msgs: list[dict], prompt: bool) -> str:
        return tokenizer.apply_chat_template(
            msgs, tokenize=False, add_generation_prompt=prompt, chat_template=template
        )

    text = render(messages, False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        start, upto = render(messages[:i], True), render(messages[: i + 1], False)
        if not (text.startswith(start) and text.startswith(upto) and len(start) <= len(upto)):
            raise InputError(
                "the chat template does not render a conversation prefix by prefix, so assistant "
                "turns cannot be located; pass --chat-template chatml or a simpler template"
            )
        spans.append((len(start), len(upto)))
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    assistant = [any(s <= a < e for s, e in spans) for a, _ in enc["offset_mapping"]]
    return EncodedExample(ids=list(enc["input_ids"]), assistant=assistant)


class SftRows:
    """Packed SFT rows in memory; a RowSource for the training loop."""

    kind_names = {ASSISTANT_KIND: "assistant"}

    def __init__(self, examples: list[EncodedExample], *, seq_len: int, pad_id: int, vocab_size: int) -> None:
        self.seq_len = seq_len
        rows = _pack_next_fit([len(e.ids) for e in examples], seq_len)
        self.num_rows = len(rows)
        if not rows:
            raise InputError(f"no example fits in --seq-len {seq_len}; raise it")
        self.tokens = np.full((self.num_rows, seq_len), pad_id, np.int64)
        self.mask = np.zeros((self.num_rows, seq_len), bool)
        self.positions = np.zeros((self.num_rows, seq_len), np.int64)
        for r, members in enumerate(rows):
            pos = 0
            for k in members:
                n = len(examples[k].ids)
                self.tokens[r, pos : pos + n] = examples[k].ids
                self.mask[r, pos : pos + n] = examples[k].assistant
                self.positions[r, pos : pos + n] = np.arange(n)
                pos += n
            # The pad tail is a "sample" of its own.
            self.positions[r, pos:] = np.arange(seq_len - pos)
        if self.tokens.max() >= vocab_size:
            raise InputError(
                f"the tokenizer produced id {int(self.tokens.max())} >= the model's vocab_size {vocab_size}"
            )

    def batch(self, rows: np.ndarray) -> RowBatch:
        tokens, mask, positions = self.tokens[rows], self.mask[rows], self.positions[rows]
        labels = np.where(mask, tokens, IGNORE_INDEX)
        targets, kinds = shift_targets(labels, np.where(mask, ASSISTANT_KIND, 0).astype(np.uint8))
        boundary = np.zeros_like(mask)
        # Where the next token starts another example, it is never a target.
        boundary[:, :-1] = positions[:, 1:] == 0
        targets[boundary], kinds[boundary] = IGNORE_INDEX, 0
        return RowBatch(input_ids=tokens, targets=targets, target_kinds=kinds, position_ids=positions)


def _pack_next_fit(lengths: list[int], seq_len: int) -> list[list[int]]:
    """Example indices per row, in order: start a new row when the next example does not fit.

    lengths [5 4 3 6] into rows of 10 -> [[0, 1], [2, 3]]; examples longer than seq_len are left out.
    """
    rows: list[list[int]] = []
    used = seq_len + 1
    for k, n in enumerate(lengths):
        if n > seq_len:
            continue
        if used + n > seq_len:
            rows.append([])
            used = 0
        rows[-1].append(k)
        used += n
    return rows


def prepare_sft(
    paths: list[Path],
    tokenizer: Any,
    *,
    seq_len: int,
    template: str | None,
    vocab_size: int,
    max_examples: int | None = None,
) -> tuple[SftRows, SftStats]:
    """Read, template, tokenize and pack the SFT examples."""
    stats = SftStats()
    examples = []
    for messages, fmt in read_conversations(paths, max_examples=max_examples):
        stats.by_format[fmt] = stats.by_format.get(fmt, 0) + 1
        ex = encode_conversation(messages, tokenizer, template)
        if len(ex.ids) > seq_len:
            stats.dropped_too_long += 1
            continue
        examples.append(ex)
        stats.assistant_tokens += sum(ex.assistant)
        stats.tokens += len(ex.ids)
    stats.examples = len(examples)
    if not examples:
        raise InputError(
            f"no usable SFT example in {', '.join(map(str, paths))} "
            f"({stats.dropped_too_long} longer than --seq-len {seq_len})"
        )
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    rows = SftRows(examples, seq_len=seq_len, pad_id=pad, vocab_size=vocab_size)
    stats.rows = rows.num_rows
    return rows, stats
