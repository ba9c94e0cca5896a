"""Thinking extraction: keep the trajectory, drop tags and the final answer, record how it was found."""

from tpt.augment.backend import GenerationResult
from tpt.augment.extract import extract_thinking


def r(**kw) -> GenerationResult:
    return GenerationResult(key=0, **kw)


def test_reasoning_field_wins():
    t = extract_thinking(r(text="The answer is 4.", reasoning="  2+2 is 4  "))
    assert (t.text, t.method, t.closed) == ("2+2 is 4", "reasoning_field", True)


def test_tags_in_content_and_final_answer_dropped():
    t = extract_thinking(r(text="<think>\nstep one\n</think>\n\nFinal: 4"))
    assert (t.text, t.method, t.closed) == ("step one", "think_tags", True)


def test_opened_turn_stopped_at_close_tag():
    t = extract_thinking(r(text="step one\nstep two", prefilled_think=True, finish_reason="stop"))
    assert (t.text, t.method, t.closed) == ("step one\nstep two", "opened_think", True)


def test_cut_by_length_is_not_closed():
    t = extract_thinking(r(text="<think> a long", finish_reason="length"))
    assert (t.text, t.method, t.closed) == ("a long", "think_tags", False)


def test_untagged_content():
    t = extract_thinking(r(text="plain analysis </think> answer"))
    assert (t.text, t.method) == ("plain analysis", "untagged")
