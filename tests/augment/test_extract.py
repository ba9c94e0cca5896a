"""Thinking extraction: keep the trajectory, drop tags and the final answer, record how it was found."""

from tpt.augment.backends.base import GenerationResult
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


def test_a_literal_think_tag_inside_an_opened_turn_is_text():
    # tpt opened the turn with <think>: a "<think>" the model writes later is part of its thinking,
    # and the text before it must stay.
    completion = "The tag <think> opens a block; the parser keys on it.\nSo blocks nest."
    t = extract_thinking(r(text=completion, prefilled_think=True, finish_reason="stop", stop="</think>"))
    assert (t.text, t.method, t.closed) == (completion, "opened_think", True)
    # A tag the model repeats at the very start is the one it was given, dropped.
    t = extract_thinking(r(text="<think>\nfirst idea", prefilled_think=True))
    assert t.text == "first idea" and t.method == "opened_think"


def test_a_reasoning_field_cut_by_the_length_limit_is_not_closed():
    t = extract_thinking(r(text="", reasoning="a long line of thought", finish_reason="length"))
    assert (t.method, t.closed, t.stopped_by) == ("reasoning_field", False, "length")
    # The reasoning ended and the answer after it was cut: the thinking itself is whole.
    t = extract_thinking(r(text="The answer", reasoning="thought", finish_reason="length"))
    assert t.closed is True


def test_the_record_says_which_stop_ended_the_generation():
    assert extract_thinking(r(text="a", finish_reason="stop", stop="</think>")).stopped_by == "</think>"
    assert extract_thinking(r(text="a", finish_reason="stop", stop="eos")).stopped_by == "eos"
    assert extract_thinking(r(text="a", finish_reason="length")).stopped_by == "length"
    assert extract_thinking(r(text="a", finish_reason="stop")).stopped_by is None  # the server did not say
    assert extract_thinking(r(text="<think>a\n</think>", finish_reason="stop")).stopped_by == "</think>"
