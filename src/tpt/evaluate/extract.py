"""Answer extraction: the documented rules that pull a final answer out of a generation.

A rule is a short string, as written in task files:

- `first_number` / `last_number`: the first / last number: `-1,234.5`, `$18`, `0.5`, `3/4` (commas
  are kept here and removed by the numeric comparison);
- `first_spaced_number` / `last_spaced_number`: the same, for tokenizers that split digits (`4 8` is 48);
- `boxed`: the content of the last complete `\\boxed{...}` (or `\\fbox{...}`), braces balanced;
- `mc_letter`: X of the last "answer is (X)"; else a reply that starts with `(X)`, `X)`, `X.` or is `X`;
- `regex:PATTERN` / `last_regex:PATTERN`: group 1 (or the whole match) of the first / last match.

No match gives None: a failed extraction, which scores 0 (as in the paper).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tpt.core.errors import ConfigError

# A number: an optional sign (not after a digit or ")" , so "5-3" gives 5 and 3), an optional "$",
# then either comma-grouped thousands ("1,234,567.8") or plain digits ("1234.5"), optionally "/digits".
_SIGN = r"(?:(?<![\d)])-)?"
_NUMBER = _SIGN + r"\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+(?:\.\d+)?)?(?![\d])"
NUMBER_RE = re.compile(_NUMBER)
# Digits separated by single spaces ("4 8 . 5" is 48 then 5): tokenizers that split every digit.
SPACED_NUMBER_RE = re.compile(_SIGN + r"\d(?: \d)*(?:\.\d(?: \d)*)?(?![\d])")
MC_ANSWER_RE = re.compile(r"(?i:answer is)\s*:?\s*\(?\s*([A-J])\s*\)?(?![a-zA-Z])")
MC_LEADING_RE = re.compile(r"^\s*(?:\(([A-J])\)|([A-J])(?:[).:]|\s*$))")

SIMPLE_RULES = (
    "first_number",
    "last_number",
    "first_spaced_number",
    "last_spaced_number",
    "boxed",
    "mc_letter",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class ExtractRule:
    """A parsed extraction rule: its kind and, for regex kinds, the compiled pattern."""

    spec: str
    kind: str
    pattern: re.Pattern[str] | None = None


def parse_rule(spec: str) -> ExtractRule:
    """Parse a rule string, raising ConfigError that lists the valid rules."""
    if not isinstance(spec, str):
        raise ConfigError(f"an extraction rule must be a string, got {spec!r}")
    if spec in SIMPLE_RULES:
        return ExtractRule(spec=spec, kind=spec)
    for kind in ("regex", "last_regex"):
        if spec.startswith(kind + ":"):
            try:
                pattern = re.compile(spec[len(kind) + 1 :])
            except re.error as exc:
                raise ConfigError(f"extraction rule {spec!r}: invalid regular expression ({exc})") from None
            return ExtractRule(spec=spec, kind=kind, pattern=pattern)
    raise ConfigError(
        f"unknown extraction rule {spec!r}; expected one of {', '.join(SIMPLE_RULES)}, "
        "regex:PATTERN or last_regex:PATTERN"
    )


def extract(rule: ExtractRule, text: str) -> str | None:
    """Apply a rule to a generation; None when nothing matches."""
    kind = rule.kind
    if kind in ("first_number", "last_number"):
        found = NUMBER_RE.findall(text)
        return (found[0] if kind == "first_number" else found[-1]) if found else None
    if kind in ("first_spaced_number", "last_spaced_number"):
        found = SPACED_NUMBER_RE.findall(text)
        if not found:
            return None
        return (found[0] if kind == "first_spaced_number" else found[-1]).replace(" ", "")
    if kind == "boxed":
        return last_boxed(text)
    if kind == "mc_letter":
        return mc_letter(text)
    assert rule.pattern is not None
    matches = list(rule.pattern.finditer(text))
    if not matches:
        return None
    m = matches[0] if kind == "regex" else matches[-1]
    return m.group(1) if rule.pattern.groups else m.group(0)


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` / `\\fbox{...}` (nested braces kept), or of `\\boxed 5`."""
    starts = [m for m in re.finditer(r"\\(?:boxed|fbox)\s*(\{|\s)", text)]
    for m in reversed(starts):
        if m.group(1) != "{":  # "\boxed 5$": up to the next "$" or end of line
            content = re.split(r"[$\n]", text[m.end() :], maxsplit=1)[0].strip()
            if content:
                return content
            continue
        depth, i = 1, m.end()
        while i < len(text):
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
                if depth == 0:
                    return text[m.end() : i]
            i += 1
        # unbalanced (cut by max_new_tokens): look at an earlier box instead
    return None


def mc_letter(text: str) -> str | None:
    """The chosen option letter: the last "answer is (X)", else a leading "(X)" / "X." / "X"."""
    found = MC_ANSWER_RE.findall(text)
    if found:
        return found[-1]
    m = MC_LEADING_RE.match(text)
    return (m.group(1) or m.group(2)) if m else None
