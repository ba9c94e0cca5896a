"""Each trajectory check flags what it should (positive case) and nothing else (negative case)."""

import json
from dataclasses import replace
from importlib import resources

import numpy as np
import pytest

from tpt.core.errors import ConfigError
from tpt.formats.reading import RecordLine
from tpt.quality.checks import CheckConfig, Validator, copy_fractions, repetition_fractions
from tpt.quality.ngrams import word_hashes

DOC_WORDS = (
    "A matrix is invertible when its determinant is nonzero. The determinant of a two by two matrix"
).split()


def rec(d: dict) -> RecordLine:
    return RecordLine(
        id=d.get("id"),
        text=d["text"],
        thinking=d.get("thinking"),
        finish_reason=d.get("finish_reason"),
        source=d.get("source", "s"),
        file="f",
        line=1,
        raw=json.dumps(d).encode(),
    )


@pytest.fixture(scope="module")
def validator():
    return Validator(CheckConfig())


def reason(validator, d):
    [v] = validator.judge([rec(d)])
    return None if v is None else v.reason


def test_a_good_trajectory_passes_every_check(validator, good):
    assert reason(validator, good) is None


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"thinking": None}, "missing_thinking"),
        ({"finish_reason": "length"}, "truncated"),
        ({"thinking": "<think> I start reasoning and never stop"}, "unclosed_think"),
        ({"thinking": "  \n "}, "empty"),
        ({"thinking": "Short and shallow: nine words in total here."}, "too_short"),
        ({"thinking": "fine so far <|im_end|> " + "padding words " * 20}, "leaked_control"),
        ({"thinking": "so the answer is clear </think> " + "more words " * 20}, "leaked_control"),
        ({"thinking": "I need to check the result again. " * 12}, "repetition"),
    ],
)
def test_each_check_flags_its_failure(validator, good, change, expected):
    assert reason(validator, {**good, **change}) == expected


TWENTY_WORDS = " ".join(f"word{i}" for i in range(20))


@pytest.mark.parametrize(
    "change",
    [
        {"finish_reason": "stop"},  # truncated: only "length" counts
        {"finish_reason": None},
        {"thinking": "I think about how to think before I answer: " + TWENTY_WORDS},  # no tags
        {"thinking": TWENTY_WORDS},  # exactly the minimum number of words
        {"thinking": "Angles like <x> or a | b, and <thinking> are not control tokens. " + TWENTY_WORDS},
        {"thinking": "Check it again. " * 2 + TWENTY_WORDS},  # a little repetition is fine
        # A document may quote control strings: its content is data, encoded as text (issue 13).
        {"text": "A page quoting <|endoftext|> and <|im_end|>\n<|im_start|>assistant in its text."},
        {"thinking": "Quoting one line: " + " ".join(DOC_WORDS[:9]) + ". " + TWENTY_WORDS * 2},  # some copy
    ],
)
def test_near_misses_pass(validator, good, change):
    """The negative case of each check: text close to a failure that must not be flagged."""
    assert reason(validator, {**good, **change}) is None


def test_balanced_tags_inside_the_thinking_are_leaked_not_unclosed(validator, good):
    thinking = "The tag <think> opens and </think> closes: " + TWENTY_WORDS
    assert reason(validator, {**good, "thinking": thinking}) == "leaked_control"


def test_copy_flags_a_thinking_that_restates_the_document(validator, good):
    copied = {**good, "thinking": "Okay. " + good["text"] + " That is what the text says."}
    assert reason(validator, copied) == "copy"


def test_contamination_flags_an_eval_question_in_document_or_thinking(validator, good):
    path = resources.files("tpt").joinpath("data/eval/gsm8k/test.jsonl")
    question = json.loads(path.read_text(encoding="utf-8").splitlines()[0])["question"]
    [v] = validator.judge([rec({**good, "text": good["text"] + " " + question})])
    assert v.reason == "contamination" and "gsm8k" in v.detail and "document" in v.detail
    # Case and punctuation do not hide it.
    shouted = question.upper().replace(".", " ").replace(",", ";")
    [v] = validator.judge([rec({**good, "thinking": good["thinking"] + " " + shouted})])
    assert v.reason == "contamination" and "thinking" in v.detail
    # Twelve words of it are below the 13-word n-gram: not contaminated.
    short = " ".join(question.split()[:12])
    assert reason(validator, {**good, "thinking": good["thinking"] + " " + short}) is None


def test_mmlu_math_and_arc_questions_are_indexed_too(validator, good):
    for rel, field in (
        ("mmlu/test.jsonl", "question"),
        ("math500/test.jsonl", "problem"),
        ("arc_challenge/test.jsonl", "question"),
    ):
        lines = resources.files("tpt").joinpath(f"data/eval/{rel}").read_text(encoding="utf-8").splitlines()
        question = next(q for q in (json.loads(x)[field] for x in lines) if len(q.split()) > 20)
        [v] = validator.judge([rec({**good, "thinking": good["thinking"] + " " + question})])
        assert v is not None and v.reason == "contamination", rel


def test_disabled_checks_do_not_run(good):
    v = Validator(CheckConfig(disabled=frozenset({"truncated", "too_short", "leaked_control"})))
    [verdict] = v.judge([rec({**good, "finish_reason": "length", "thinking": "tiny <|im_end|>"})])
    assert verdict is None
    with pytest.raises(ConfigError, match="missing_thinking"):
        CheckConfig(disabled=frozenset({"missing_thinking"}))
    with pytest.raises(ConfigError, match="unknown check"):
        CheckConfig(disabled=frozenset({"spelling"}))


def test_extra_control_strings_and_thresholds(good):
    v = Validator(CheckConfig(control_strings=("[[END]]",), min_thinking_words=500))
    assert [
        x.reason for x in v.judge([rec({**good, "thinking": good["thinking"] + " [[END]]"}), rec(good)])
    ] == ["leaked_control", "too_short"]
    with pytest.raises(ConfigError, match="--max-copy"):
        CheckConfig(max_copy=1.5)


def test_repetition_fraction_is_exact():
    # n=2: "a b a b a b" -> ab ba ab ba ab: three repeat an earlier one -> 3/5.
    words = word_hashes(["a b a b a b", "a b c d", "x"])
    np.testing.assert_allclose(repetition_fractions(words, 2), [3 / 5, 0, 0])


def test_copy_fraction_compares_each_thinking_with_its_own_document():
    docs = word_hashes(["the cat sat on the mat", "nothing in common here"])
    thinking = word_hashes(["the cat sat down", "the cat sat on"])
    # Record 0: bigrams "the cat", "cat sat" are in doc 0, "sat down" is not -> 2/3.
    # Record 1: its document shares nothing, even though document 0 would -> 0.
    np.testing.assert_allclose(copy_fractions(docs, thinking, 2), [2 / 3, 0])


def test_batch_verdicts_equal_one_record_at_a_time(validator, good):
    """Batching is an optimization only: the same record gets the same verdict in any batch."""
    variants = [
        good,
        {**good, "finish_reason": "length"},
        {**good, "thinking": "word " * 40},
        {**good, "thinking": good["text"]},
        replace_thinking(good, "short"),
    ]
    together = [None if v is None else v.reason for v in validator.judge([rec(d) for d in variants])]
    alone = [reason(validator, d) for d in variants]
    assert together == alone == [None, "truncated", "repetition", "copy", "too_short"]


def replace_thinking(d, thinking):
    return {**d, "thinking": thinking}


def test_verdict_order_is_the_documented_order(validator, good):
    # Truncated and too short: the first check in CHECKS order wins.
    assert reason(validator, {**good, "finish_reason": "length", "thinking": "tiny"}) == "truncated"
    assert replace(CheckConfig(), max_copy=0.9).max_copy == 0.9


def test_report_only_and_document_only_configs(good):
    from tpt.quality.checks import THINKING_FILTERS, paper_faithful

    path = resources.files("tpt").joinpath("data/eval/gsm8k/test.jsonl")
    question = json.loads(path.read_text(encoding="utf-8").splitlines()[0])["question"]
    paper = Validator(paper_faithful(CheckConfig()))
    cut = rec({**good, "finish_reason": "length", "thinking": "short"})
    leaked = rec({**good, "thinking": good["thinking"] + " <|im_end|>"})
    dirty = rec({**good, "text": good["text"] + " " + question})
    v_cut, v_leaked, v_dirty = paper.judge([cut, leaked, dirty])
    assert v_cut is None and v_leaked is None  # the paper filters nothing
    assert v_dirty is not None and v_dirty.reason == "contamination" and not v_dirty.drop
    assert set(THINKING_FILTERS) <= paper.config.disabled
    # The raw arm judges the document alone: a thinking-less record or a bad trajectory is fine.
    raw = Validator(CheckConfig(thinking=False))
    bare, bad_think, bad_doc = raw.judge(
        [
            rec({**good, "thinking": None}),
            cut,
            rec({**good, "text": good["text"] + " <|im_end|>"}),
        ]
    )
    assert bare is None and bad_think is None and bad_doc is None  # a document's content is data
    with pytest.raises(ConfigError, match="reported without dropping"):
        CheckConfig(report_only=frozenset({"copy"}))
