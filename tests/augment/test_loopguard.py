"""The loop guard (tpt.augment.loopguard): fires on real loops, says where they began, stays cheap."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from tpt.augment.loopguard import MIN_FILL_NGRAMS, LoopGuard, LoopGuardOptions, TextLoopGuard
from tpt.core.errors import ConfigError


def _prose() -> str:
    path = resources.files("tpt") / "data" / "sample_corpus" / "understanding_linear_algebra.jsonl"
    return json.loads(path.read_text(encoding="utf-8").splitlines()[0])["text"]


def _pieces(text: str) -> list[str]:
    from tpt.augment.loopguard import TEXT_PIECE

    return TEXT_PIECE.findall(text)


# The loops the embedded teacher fell into on the demo (issue 15), and one with a longer period.
LOOPS = [
    r"\equiv d + d ",
    "- `>` or `>` ",
    "So the answer is the number of ways to choose the vertices of the graph. ",
]


@pytest.mark.parametrize("unit", LOOPS)
def test_a_loop_after_prose_is_stopped_and_its_start_found(unit):
    prose = _prose()[:1500]
    head = _pieces(prose)
    loop = _pieces(unit * 200)
    guard = LoopGuard()
    fired_at = next(i for i, token in enumerate(head + loop) if guard.feed(token))
    window = LoopGuardOptions().window
    assert len(head) <= fired_at <= len(head) + window  # within one window of the loop's start
    assert guard.fired and guard.feed("anything")  # stays fired
    # The loop began at the first copy of the unit (the prose may end in a few tokens of it).
    assert len(head) - len(_pieces(unit)) <= guard.loop_start <= len(head) + len(_pieces(unit))


def test_a_loop_from_the_first_token_fires_once_the_window_holds_min_fill_ngrams():
    options = LoopGuardOptions(window=64, ngram=4)
    assert options.min_fill == MIN_FILL_NGRAMS * 4 == 24
    guard = LoopGuard(options)
    tokens = [1, 2, 3] * 100
    fired_at = next(i for i, t in enumerate(tokens) if guard.feed(t))
    assert fired_at == 24 + 4 - 2  # 24 n-grams need 27 tokens: position 26
    assert guard.loop_start == 0
    # a window smaller than MIN_FILL_NGRAMS x ngram is judged only once full, as before
    small = LoopGuard(LoopGuardOptions(window=16, ngram=4))
    assert next(i for i, t in enumerate(tokens) if small.feed(t)) == 16 + 4 - 2


@pytest.mark.parametrize("cap", [60, 120, 200])
def test_a_plain_loop_under_a_cap_below_the_window_is_stopped(cap):
    """Issue 29: with --max-thinking-tokens 200 the 256-token window never filled, and "The end of the
    context." repeated to the cap was never stopped."""
    options = LoopGuardOptions()
    assert cap < options.window
    stream = "The end of the context. " * 100
    pieces = _pieces(stream)[:cap]
    guard = TextLoopGuard(options)
    fed = 0
    for piece in pieces:  # the server's deltas: one piece and its space at a time
        fed += 1
        if guard.feed_text(piece + " "):
            break
    assert guard.fired and guard.loop_start == 0 and guard.loop_start_char == 0
    # judged from min_fill n-grams on: the 48th n-gram ends at piece 55, not at the cap
    assert guard.tokens == options.min_fill + options.ngram - 1 == 55 == fed


def test_a_loop_under_a_small_cap_after_prose_is_stopped_when_it_dominates_the_window():
    """A partly filled window counts the n-grams since the first token: a loop that began after some
    prose fires once its repeats reach the threshold's share of all of them (start + period <= about
    0.3 x the tokens so far); before min_fill n-grams, nothing is judged."""
    head = _pieces(_prose())[:20]
    loop = _pieces("The end of the context. " * 40)
    guard = LoopGuard()
    fired_at = next(i for i, token in enumerate(head + loop) if guard.feed(token))
    # (n - 7 - 20 - 6) / (n - 7) >= 0.7 first holds at n = 94 tokens
    assert fired_at + 1 == 94 < LoopGuardOptions().window
    assert 20 - 6 <= guard.loop_start <= 20 + 6
    late = LoopGuard()  # a loop that begins at token 120 of a 200-token cap is not stopped by the cap
    assert not late.feed_many(_pieces(_prose())[:120] + (loop * 5)[:80])


def test_prose_never_fires_and_memory_stays_bounded():
    guard = LoopGuard()
    text = _pieces(_prose()) * 3  # the same document three times in a row is not a loop of the window
    assert len(text) > 1000
    assert not guard.feed_many(text[: len(text) // 3])
    assert len(guard._counts) <= LoopGuardOptions().window
    assert len(guard._entries) == LoopGuardOptions().window


def test_off_gives_no_guard_and_options_are_checked():
    assert LoopGuardOptions(enabled=False).guard() is None
    assert isinstance(LoopGuardOptions().guard(), LoopGuard)
    with pytest.raises(ConfigError, match="--loop-threshold"):
        LoopGuardOptions(threshold=0)
    with pytest.raises(ConfigError, match="--loop-window"):
        LoopGuardOptions(window=8, ngram=6)
    with pytest.raises(ConfigError, match="--loop-ngram"):
        LoopGuardOptions(ngram=0)
    assert LoopGuardOptions().as_dict()["enabled"] is True


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 10_000])
def test_text_guard_is_the_same_however_the_stream_is_chunked(chunk):
    prose = _prose()[:1200]
    stream = prose + r"\equiv d + d " * 150
    guard = TextLoopGuard()
    fired_after = None
    for i in range(0, len(stream), chunk):
        if guard.feed_text(stream[i : i + chunk]):
            fired_after = i + chunk
            break
    assert fired_after is not None
    reference = LoopGuard()
    assert reference.feed_many(_pieces(stream))
    assert guard.tokens == reference.tokens and guard.loop_start == reference.loop_start
    # the character offset lands at the loop's first copy (or a token before it)
    assert abs(guard.loop_start_char - len(prose)) <= 8
    assert stream[guard.loop_start_char :].lstrip().startswith(("\\equiv", "d +", "+ d"))


def test_text_guard_counts_the_last_piece_at_the_end():
    guard = TextLoopGuard(LoopGuardOptions(window=16, ngram=2))
    assert not guard.feed_text("ab " * 8 + "ab")  # "ab" at the end may go on
    assert guard.tokens == 8
    guard.finish()
    assert guard.tokens == 9


def test_the_embedded_teachers_real_loops_are_stopped_early():
    transformers = pytest.importorskip("transformers")
    from pathlib import Path

    from tpt.core.hfmodel import resolve_model_dir

    tok = transformers.AutoTokenizer.from_pretrained(str(resolve_model_dir(None)))
    data = json.loads((Path(__file__).parent / "data" / "smollm2_loops.json").read_text(encoding="utf-8"))
    assert len(data["records"]) == 7
    for record in data["records"]:
        ids = tok(record["thinking"], add_special_tokens=False).input_ids
        guard = LoopGuard()
        assert guard.feed_many(ids), record["id"]
        assert guard.tokens <= 520 < len(ids), (record["id"], guard.tokens)  # about half the 1024 cap
        assert guard.loop_start < guard.tokens - 32
        # the thinking before the loop began is no loop
        assert not LoopGuard().feed_many(ids[: guard.loop_start])
        # and the text guard over the streamed text stops it too
        text_guard = TextLoopGuard()
        assert text_guard.feed_text(record["thinking"]), record["id"]
        assert text_guard.loop_start_char < len(record["thinking"])
