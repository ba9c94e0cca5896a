"""Answer extraction on real-looking generations, including the tricky ones."""

from __future__ import annotations

import pytest

from tpt.core.errors import ConfigError
from tpt.evaluate.builtin import GSM8K_STRICT
from tpt.evaluate.extract import extract, parse_rule

CASES = [
    # (rule, generation, expected)
    ("last_number", "She pays 3 * $4 = $12.\n#### 12", "12"),
    ("last_number", "The total is 1,234,567 dollars.", "1,234,567"),
    ("last_number", "So the answer is $1,250.50.", "$1,250.50"),
    ("last_number", "He walks 5 km/h for 2 hours, so 10 km.", "10"),
    ("last_number", "Half of it: 3/4 of the cake.", "3/4"),
    ("last_number", "The temperature drops to -7 degrees.", "-7"),
    ("last_number", "5-3 = 2", "2"),
    ("first_number", "5-3 = 2", "5"),
    ("first_number", "The lists 1,2,3 have", "1"),
    ("last_number", "It rose 0.5 percent and ended at 18.", "18"),
    ("last_number", "No idea, sorry.", None),
    ("first_number", " 27 . dan has", "27"),
    ("last_number", " 5 x 5 = 25 . 25 + 2 = 27 . so 27 ", "27"),
    ("last_spaced_number", " 4 x 6 = 2 4 . 2 4 + 5 = 2 9 . so 2 9 ", "29"),
    ("first_spaced_number", " 5 5 . how many", "55"),
    ("boxed", "Thus $x = \\boxed{\\frac{11}{12}}$.", "\\frac{11}{12}"),
    ("boxed", "First \\boxed{3}, then corrected: \\boxed{4}.", "4"),
    (
        "boxed",
        "The answer is $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$",
        "\\left( 3, \\frac{\\pi}{2} \\right)",
    ),
    ("boxed", "We get \\boxed{5} and then \\boxed{\\frac{1", "5"),  # the last box was cut off
    ("boxed", "\\fbox{12}", "12"),
    ("boxed", "so $\\boxed 7$.", "7"),
    ("boxed", "The final answer is 7.", None),
    ("mc_letter", " Mercury is closest. The answer is (B).", "B"),
    ("mc_letter", "the answer is: C", "C"),
    ("mc_letter", "The answer is (A). Wait, no. The answer is (D).", "D"),
    ("mc_letter", " (C) because ice melts", "C"),
    ("mc_letter", "B. The sun", "B"),
    ("mc_letter", "A dog is an animal.", None),
    ("mc_letter", "the answer is a dog", None),
    ("mc_letter", "I do not know.", None),
    (GSM8K_STRICT, "3 + 4 = <<3+4=7>>7\n#### 7", "7"),
    (GSM8K_STRICT, "#### 1,000", "1,000"),
    (GSM8K_STRICT, "The answer is 7.", None),
    ("regex:so (\\d+) pens", "so 12 pens and so 13 pens", "12"),
    ("last_regex:so (\\d+) pens", "so 12 pens and so 13 pens", "13"),
    ("regex:\\d+", "a 1 b 2", "1"),
]


@pytest.mark.parametrize(("rule", "text", "expected"), CASES)
def test_extraction_table(rule: str, text: str, expected: str | None) -> None:
    assert extract(parse_rule(rule), text) == expected


@pytest.mark.parametrize("bad", ["first_numbr", "regex:(unclosed", "", "boxed:x"])
def test_bad_rules_name_the_problem(bad: str) -> None:
    with pytest.raises(ConfigError, match="extraction rule|regular expression"):
        parse_rule(bad)
