"""Answer normalization and comparison: numeric, LaTeX math, option letter, exact string.

- `numeric`: both sides read as numbers (after removing `$`, `,`, `%`, spaces between digits and a
  final `.`; `3/4` and `\\frac{3}{4}` allowed) and agree to 1e-6;
- `math`: the normalized LaTeX strings are equal, or both are numbers that agree (`\\frac{1}{2}` = `0.5`);
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

from tpt.errors import ConfigError

COMPARISONS = ("numeric", "math", "letter", "exact")

_PLAIN_NUMBER = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)")
_FRACTION = re.compile(r"(-?)\\frac\{(-?[\d.]+)\}\{(-?[\d.]+)\}")
_SLASH = re.compile(r"(-?[\d.]+)/(-?[\d.]+)")


def check_compare(compare: str) -> str:
    if compare not in COMPARISONS:
        raise ConfigError(
            f"unknown compare mode {compare!r}; expected one of {', '.join(COMPARISONS)}"
        )
    return compare


def parse_number(text: str | None) -> float | None:
    """Read '$1,234.50', '18.', '-3', '3/4', '\\frac{3}{4}', '50%' as a float; None if not a number."""
    if text is None:
        return None
    s = text.strip().replace("$", "").replace(",", "").replace("\\%", "").replace("%", "")
    s = re.sub(r"(?<=\d) (?=\d)", "", s).strip()  # "4 8" -> "48" (digit-splitting tokenizers)
    s = s.rstrip(".").strip()
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
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    s = re.sub(r"(?<![\d])\.(\d)", r"0.\1", s)
    s = s.rstrip(".")
    if re.fullmatch(r"-?\d+\.0+", s):  # "12.0" -> "12"
        s = s.split(".")[0]
    return s


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
        a, b = parse_number(na), parse_number(nb)
        return a is not None and b is not None and numbers_equal(a, b)
    if compare == "letter":
        return extracted.strip().upper() == gold.strip().upper()
    if compare == "exact":
        return extracted.strip() == gold.strip()
    raise ConfigError(f"unknown compare mode {compare!r}")
