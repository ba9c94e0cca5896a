"""The loop guard (tpt.augment.loopguard): fires on real loops, says where they began, stays cheap."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from tpt.augment.loopguard import LoopGuard, LoopGuardOptions, TextLoopGuard
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


def test_a_loop_from_the_first_token_fires_once_the_window_is_full():
    guard = LoopGuard(LoopGuardOptions(window=64, ngram=4))
    tokens = [1, 2, 3] * 100
    fired_at = next(i for i, t in enumerate(tokens) if guard.feed(t))
    assert fired_at == 64 + 4 - 2  # 64 full n-grams need 67 tokens: position 66
    assert guard.loop_start == 0


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
