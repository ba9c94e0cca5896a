"""The paper's prompt templates for thinking-trajectory generation, and rendering them per document.

`paper` is the template of [P] section 2 verbatim (line breaks reconstructed from the PDF, as the paper's
appendix shows them). `random-focus` is the ablation of [P] App. A.3: a random position of the document is
marked `<<<READING HERE>>>` (the marker's bracket count is uncertain in the PDF). A user template is a text
file with `{{CONTEXT}}` where the document goes.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from pathlib import Path

from tpt.core.errors import ConfigError

_PLACEHOLDER = re.compile(r"\{\{(CONTEXT|RANDOM CONTEXT PREFIX|REMAINING CONTEXT)\}\}")

PAPER_TEMPLATE = """{{CONTEXT}}

## End of the context

Simulate an expert's in-depth thought process as they analyze the above context, focusing on complex and informative aspects. Skip trivial details. Use Feynman technique whenever possible to ensure a deep understanding."""

RANDOM_FOCUS_TEMPLATE = """{{RANDOM CONTEXT PREFIX}} <<<READING HERE>>> {{REMAINING CONTEXT}}

## End of the context

An expert is focused at the <<<READING HERE>>> position. Simulate the expert's in-depth thought process as they analyze the above context, focusing on complex and informative aspects. Skip trivial details. Use Feynman technique whenever possible to ensure a deep understanding."""


@dataclass(frozen=True, kw_only=True, slots=True)
class PromptTemplate:
    name: str
    """'paper', 'random-focus', or the user file's path."""
    text: str

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()[:16]

    def render(self, document: str, *, focus_seed: int | None = None) -> str:
        """The prompt for one document. Placeholders are filled in one pass over the template, so a
        document that itself contains `{{REMAINING CONTEXT}}` (or `{{CONTEXT}}`) stays as written."""
        if "{{RANDOM CONTEXT PREFIX}}" in self.text:
            prefix, rest = split_at_random_word(document, focus_seed)
            parts = {"RANDOM CONTEXT PREFIX": prefix, "REMAINING CONTEXT": rest}
        else:
            parts = {"CONTEXT": document}
        return _PLACEHOLDER.sub(lambda m: parts.get(m.group(1), m.group(0)), self.text)


def load_template(spec: str) -> PromptTemplate:
    """'paper' (default), 'random-focus', or a path to a text file containing {{CONTEXT}}."""
    if spec == "paper":
        return PromptTemplate(name="paper", text=PAPER_TEMPLATE)
    if spec == "random-focus":
        return PromptTemplate(name="random-focus", text=RANDOM_FOCUS_TEMPLATE)
    path = Path(spec)
    if not path.is_file():
        raise ConfigError(
            f"--template {spec!r}: expected 'paper', 'random-focus' or a text file containing {{{{CONTEXT}}}}"
        )
    text = path.read_text(encoding="utf-8")
    if "{{CONTEXT}}" not in text and "{{RANDOM CONTEXT PREFIX}}" not in text:
        raise ConfigError(f"template file {path} has no {{{{CONTEXT}}}} placeholder for the document")
    return PromptTemplate(name=str(path), text=text)


def split_at_random_word(document: str, seed: int | None) -> tuple[str, str]:
    """Split a document at a random word boundary (never at its very start or end when it has 2+ words)."""
    words = document.split(" ")
    if len(words) < 2:
        return document, ""
    cut = random.Random(seed).randint(1, len(words) - 1)
    return " ".join(words[:cut]), " ".join(words[cut:])
