"""Answer normalization and comparison: numbers with commas and units, LaTeX fractions vs decimals."""

from __future__ import annotations

import pytest

from tpt.evaluate.answers import answers_match, normalize_math, parse_number

NUMERIC = [
    ("18", "18", True),
    ("18.00", "18", True),
    ("$18", "18", True),
    ("1,234", "1234", True),
    ("1,234.", "1234", True),
    ("-3", "-3", True),
    ("-3", "3", False),
    ("3/4", "0.75", True),
    ("\\frac{3}{4}", "0.75", True),
    ("50%", "50", True),
    ("4 8", "48", True),
    ("17", "18", False),
    ("0.333", "1/3", False),
    (None, "18", False),
    ("twelve", "12", False),
]


@pytest.mark.parametrize(("got", "gold", "same"), NUMERIC)
def test_numeric_compare(got: str | None, gold: str, same: bool) -> None:
    assert answers_match(got, gold, "numeric") is same


MATH = [
    ("\\frac{1}{2}", "0.5", True),
    ("\\dfrac{1}{2}", "\\frac12", True),
    ("1/2", "\\frac{1}{2}", True),
    ("\\frac{14}{3}", "\\frac{14}{3}", True),
    ("\\frac{14}{3}", "4.67", False),
    ("x = 5", "5", True),
    ("10\\text{ cm}", "10", True),
    ("90^\\circ", "90", True),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
    ("(3,\\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)", True),
    ("\\$1,000", "1000", True),
    ("12.0", "12", True),
    (".5", "\\frac{1}{2}", True),
    ("p - q", "p-q", True),
    ("p + q", "p - q", False),
    ("\\text{(C)}", "\\text{(C)}", True),
    ("", "5", False),
]


@pytest.mark.parametrize(("got", "gold", "same"), MATH)
def test_math_compare(got: str, gold: str, same: bool) -> None:
    assert answers_match(got, gold, "math") is same


def test_normalize_math_examples() -> None:
    assert normalize_math("\\dfrac{3}{4}") == "\\frac{3}{4}"
    assert normalize_math("$\\sqrt2$") == "\\sqrt{2}"
    assert normalize_math("5.") == "5"


def test_letters_and_exact() -> None:
    assert answers_match("b", "B", "letter")
    assert not answers_match("A", "B", "letter")
    assert answers_match(" yes ", "yes", "exact")
    assert not answers_match("Yes", "yes", "exact")


def test_parse_number_rejects_text() -> None:
    assert parse_number("12 apples") is None
    assert parse_number("1e5") is None
    assert parse_number("-2.5") == -2.5
