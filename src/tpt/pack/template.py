"""The sample format: how a document and its thinking become one training sample, in typed pieces.

A template is a string with `{document}` and `{thinking}` once each; the literal text around them is
template text. The default, `newline`, gives

    {document}\\n\\n<think>\\n{thinking}\\n</think><EOS>

with the student's BOS in front when the BOS convention says so (pack/bos.py). Each piece is
tokenized on its own and the ids are concatenated, so every token has exactly one kind (document,
thinking or template) and a document's ids are identical in the raw and the TPT arm. For a
byte-level BPE this equals tokenizing the whole sample, except where a merge would cross a piece
boundary (the separators start with a newline, which the GPT-2 split keeps apart from the words
around it).
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

import numpy as np

from tpt.core.errors import ConfigError
from tpt.formats.student import StudentTokenizer

PRESETS: dict[str, str] = {
    # A newline-separated block, the common reading of the paper's Figure 1(b).
    "newline": "{document}\n\n<think>\n{thinking}\n</think>",
    # Spaces around the tags, as the paper's Figure 1(b) prints them.
    "inline": "{document} <think> {thinking} </think>",
}
DEFAULT_TEMPLATE = "newline"
_ESCAPES = {"\\n": "\n", "\\t": "\t", "\\\\": "\\"}


@dataclass(frozen=True, kw_only=True, slots=True)
class SampleTemplate:
    """A parsed template: literal pieces and the two slots, in order."""

    name: str
    text: str
    pieces: tuple[tuple[str, str], ...]
    """("literal", text) | ("document", "") | ("thinking", "") in sample order."""


@dataclass(frozen=True, kw_only=True, slots=True)
class EncodedTemplate:
    """A template's literal pieces as token ids in one student tokenizer, ready to be filled."""

    template: SampleTemplate
    literal_ids: tuple[np.ndarray, ...]
    """Ids of each literal piece, in order (uint32)."""
    eos_id: int
    think_tags: str
    """"added_tokens" when <think> and </think> are single tokens of the tokenizer, else "plain_text"."""
    bos_id: int | None = None
    """Put in front of every sample (raw and augmented) when set: the BOS convention (pack/bos.py)."""


def parse_template(spec: str) -> SampleTemplate:
    """A preset name, or a template string; `\\n`, `\\t` and `\\\\` escapes are decoded."""
    if spec in PRESETS:
        name, text = spec, PRESETS[spec]
    else:
        name, text = "custom", re.sub(r"\\\\|\\n|\\t", lambda m: _ESCAPES[m.group(0)], spec)
    pieces: list[tuple[str, str]] = []
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ConfigError(f"--template {spec!r}: {exc} (write a literal brace as {{{{ or }}}})") from None
    for literal, field, fmt, conv in parsed:
        if literal:
            pieces.append(("literal", literal))
        if field is None:
            continue
        if field not in ("document", "thinking") or fmt or conv:
            raise ConfigError(
                f"--template {spec!r}: unknown slot {{{field}}}; use {{document}} and {{thinking}}"
            )
        pieces.append((field, ""))
    slots = [kind for kind, _ in pieces if kind != "literal"]
    if sorted(slots) != ["document", "thinking"]:
        raise ConfigError(
            f"--template {spec!r} must contain {{document}} and {{thinking}} exactly once each "
            f"(presets: {', '.join(PRESETS)})"
        )
    return SampleTemplate(name=name, text=text, pieces=tuple(pieces))


def encode_template(
    template: SampleTemplate, student: StudentTokenizer, bos_id: int | None = None
) -> EncodedTemplate:
    """Tokenize the literal pieces; refuse a template the tokenizer cannot represent."""
    literal_ids = []
    for kind, text in template.pieces:
        if kind != "literal":
            continue
        ids = student.tokenizer.encode(text, add_special_tokens=False).ids
        if student.unk_id is not None and student.unk_id in ids:
            raise ConfigError(
                f"template text {text!r} has characters that the tokenizer {student.source} maps to its "
                f"unknown token; choose another --template (presets: {', '.join(PRESETS)}) or add "
                "these tokens to the tokenizer"
            )
        if text.strip() and not ids:
            raise ConfigError(f"the tokenizer {student.source} encodes template text {text!r} to no tokens")
        literal_ids.append(np.asarray(ids, dtype=np.uint32))
    tags = (
        "added_tokens" if all(student.is_single_token(t) for t in ("<think>", "</think>")) else "plain_text"
    )
    return EncodedTemplate(
        template=template,
        literal_ids=tuple(literal_ids),
        eos_id=student.eos_id,
        think_tags=tags,
        bos_id=bos_id,
    )


def prepare_document(text: str) -> str:
    """The document as it is tokenized: trailing whitespace dropped (a separator or EOS follows)."""
    return text.rstrip()


def prepare_thinking(text: str) -> str:
    """The thinking as it is tokenized: surrounding whitespace dropped (the template supplies it)."""
    return text.strip()
