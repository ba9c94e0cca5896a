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


LISTS = [
    # Only thousands separators go: a list is not a number (these were 357 and -21 before).
    ("357", "3, 5, 7", "math", False),
    ("-21", "-2,1", "math", False),
    ("357", "3, 5, 7", "numeric", False),
    ("-21", "-2,1", "numeric", False),
    ("3,5,7", "3, 5, 7", "math", True),
    ("7, 3, 5", "3, 5, 7", "math", True),
    ("1, -2", "-2,1", "math", True),
    ("1, 2", "-2,1", "math", False),
    ("1,-2", "-2, 1", "math", True),
    ("\\frac{1}{2}, 3", "3, 0.5", "math", True),
    ("3, 5", "3, 5, 7", "math", False),
    ("(31,6,-1)", "(6,31,-1)", "math", False),
    ("(6, 31, -1)", "(6,31,-1)", "math", True),
    ("58500", "58,500", "math", True),
    ("10080", "10,\\!080", "math", True),
    ("1,234,567.5", "1234567.5", "numeric", True),
]


@pytest.mark.parametrize(("got", "gold", "compare", "same"), LISTS)
def test_lists_compare_as_lists(got: str, gold: str, compare: str, same: bool) -> None:
    assert answers_match(got, gold, compare) is same


def test_parse_number_removes_only_thousands_separators() -> None:
    assert parse_number("$1,234.50") == 1234.5
    assert parse_number("3, 5, 7") is None
    assert parse_number("-2,1") is None
    assert parse_number("12,34") is None


def test_bundled_math500_list_answers_compare_as_lists() -> None:
    import json

    from tpt.evaluate.builtin import DATA_DIR

    lists = []
    with open(DATA_DIR / "math500" / "test.jsonl", encoding="utf-8") as f:
        for line in f:
            gold = json.loads(line)["answer"]
            if "," in normalize_math(gold):  # not "58,500", which is a number
                lists.append(gold)
    assert "3, 5, 7" in lists and "-2,1" in lists
    for gold in lists:
        assert answers_match(gold, gold, "math"), gold
        squashed = normalize_math(gold).replace(",", "")
        assert not answers_match(squashed, gold, "math"), gold
