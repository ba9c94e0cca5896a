"""Answer normalization and comparison: numeric, LaTeX math, option letter, exact string.

- `numeric`: both sides read as numbers (after removing `$`, `%`, thousands separators (`1,234.5`),
  spaces between digits and a final `.`; `3/4` and `\\frac{3}{4}` allowed) and agree to 1e-6; other
  commas stay, so a list such as `3, 5, 7` is not a number (and never equals 357);
- `math`: the normalized LaTeX strings are equal, or both are numbers that agree (`\\frac{1}{2}` = `0.5`);
  a bare comma-separated list (`3, 5, 7`, `-2,1`: "enter all solutions") matches the same items in any
  order, each item compared this way; a bracketed tuple or interval compares as one string;
- `letter`: the option letters are equal (case-insensitive);
- `exact`: the strings are equal after stripping whitespace.

The LaTeX normalization follows the usual MATH / Minerva recipe (Hendrycks et al. 2021; Lewkowycz et al.
2022, appendix D), written here from their description: keep the right side of the last `=`, drop `$`,
`\\left`/`\\right`, spacing commands, degrees, `\\%`, trailing units in `\\text{}`, turn `\\dfrac`/`\\tfrac`
into `\\frac`, brace shorthand (`\\frac12`, `\\sqrt2`), `a/b` into `\\frac{a}{b}`, `.5` into `0.5`.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from tpt.core.errors import ConfigError

COMPARISONS = ("numeric", "math", "letter", "exact")

_PLAIN_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_FRACTION = re.compile(r"(-?)\\frac\{(-?[\d.]+)\}\{(-?[\d.]+)\}")
_SLASH = re.compile(r"(-?[\d.]+)/(-?[\d.]+)")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d*)?")


def check_compare(compare: str) -> str:
    if compare not in COMPARISONS:
        raise ConfigError(f"unknown compare mode {compare!r}; expected one of {', '.join(COMPARISONS)}")
    return compare


def parse_number(text: str | None) -> float | None:
    """Read '$1,234.50', '18.', '-3', '3/4', '\\frac{3}{4}', '50%' as a float; None if not a number."""
    if text is None:
        return None
    s = text.strip().replace("$", "").replace("\\%", "").replace("%", "")
    s = re.sub(r"(?<=\d) (?=\d)", "", s).strip()  # "4 8" -> "48" (digit-splitting tokenizers)
    s = s.rstrip(".").strip()
    if _THOUSANDS.fullmatch(s):  # "1,234.5": only commas that group thousands go ("3, 5" is a list)
        s = s.replace(",", "")
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    try:
        if _PLAIN_NUMBER.fullmatch(s):
            return float(s)
        if m := _FRACTION.fullmatch(s):
            value = float(Fraction(m.group(2)) / Fraction(m.group(3)))
            return -value if m.group(1) else value
        if m := _SLASH.fullmatch(s):
            return float(Fraction(m.group(1)) / Fraction(m.group(2)))
    except (ValueError, ZeroDivisionError):
        return None
    return None


def numbers_equal(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6)


def normalize_math(text: str) -> str:
    """Normalize a LaTeX final answer so that equivalent spellings compare equal as strings."""
    s = text.strip()
    if "=" in s and not re.search(r"\\[lg]e|<|>", s):
        s = s.split("=")[-1]
    for old, new in (("\\dfrac", "\\frac"), ("\\tfrac", "\\frac"), ("\\left", ""), ("\\right", "")):
        s = s.replace(old, new)
    for junk in (
        "\\displaystyle",
        "\\$",
        "\\!",
        "\\,",
        "\\;",
        "\\:",
        "\\ ",
        "$",
        "^\\circ",
        "^{\\circ}",
        "\\%",
        "%",
        "{,}",
    ):
        s = s.replace(junk, "")
    s = s.replace("\\mbox", "\\text")
    # A trailing unit ("10\text{ cm}") goes; a lone \text{...} answer is unwrapped.
    unwrapped = re.sub(r"\\text\{\s*[^{}]*\}\s*$", "", s).strip()
    s = unwrapped if unwrapped else s
    s = re.sub(r"\\text\{([^{}]*)\}", r"\1", s)
    s = re.sub(r"\\(?:textbf|mathbf|mathrm|overline)\{([^{}]*)\}", r"\1", s)
    s = re.sub(r"\s+", "", s)
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\{([^{}]*)\}(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\sqrt(\w)", r"\\sqrt{\1}", s)
    if _SLASH.fullmatch(s):
        num, den = s.split("/")
        s = f"\\frac{{{num}}}{{{den}}}"
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    s = re.sub(r"(?<![\d])\.(\d)", r"0.\1", s)
    s = s.rstrip(".")
    if re.fullmatch(r"-?\d+\.0+", s):  # "12.0" -> "12"
        s = s.split(".")[0]
    return s


def split_list(normalized: str) -> list[str]:
    """The items of a bare comma-separated list (`3,5,7`, `1,-2`), split at commas outside any
    brackets or braces; anything else (a tuple `(6,31,-1)`, an interval, a number) is one item."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(normalized):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(normalized[start:i])
            start = i + 1
    items.append(normalized[start:])
    return items if all(items) else [normalized]


def _math_atoms_equal(a: str, b: str) -> bool:
    if a == b and a != "":
        return True
    x, y = parse_number(a), parse_number(b)
    return x is not None and y is not None and numbers_equal(x, y)


def _same_items(got: list[str], gold: list[str]) -> bool:
    """A list answer ("enter all solutions, separated by commas") matches the same items in any order."""
    if len(got) != len(gold):
        return False
    left = list(got)
    for item in gold:
        hit = next((i for i, g in enumerate(left) if _math_atoms_equal(g, item)), None)
        if hit is None:
            return False
        left.pop(hit)
    return True


def answers_match(extracted: str | None, gold: str, compare: str) -> bool:
    """Whether an extracted answer equals the gold one under a comparison mode; None never matches."""
    if extracted is None:
        return False
    if compare == "numeric":
        a, b = parse_number(extracted), parse_number(gold)
        return a is not None and b is not None and numbers_equal(a, b)
    if compare == "math":
        na, nb = normalize_math(extracted), normalize_math(gold)
        if na == nb and na != "":
            return True
        gold_items, got_items = split_list(nb), split_list(na)
        if len(gold_items) > 1 or len(got_items) > 1:
            return _same_items(got_items, gold_items)
        return _math_atoms_equal(na, nb)
    if compare == "letter":
        return extracted.strip().upper() == gold.strip().upper()
    if compare == "exact":
        return extracted.strip() == gold.strip()
    raise ConfigError(f"unknown compare mode {compare!r}")
