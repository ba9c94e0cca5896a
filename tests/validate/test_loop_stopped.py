"""Records the loop guard stopped (finish_reason 'repetition', the thinking kept up to the loop) are told
apart: validate's loop_stopped check flags them, and it is a thinking filter (--paper-faithful keeps them)."""

import json

from tpt.formats.reading import RecordLine
from tpt.quality.checks import CHECKS, THINKING_FILTERS, CheckConfig, Validator, paper_faithful
from tpt.quality.options import CHECK_NAMES


def _judge(config: CheckConfig, d: dict) -> str | None:
    line = RecordLine(
        id=d["id"], text=d["text"], thinking=d["thinking"], finish_reason=d["finish_reason"],
        source=d["source"], file="f", line=1, raw=json.dumps(d).encode(),
    )  # fmt: skip
    [verdict] = Validator(config).judge([line])
    return None if verdict is None else verdict.reason


def test_a_loop_stopped_record_is_flagged_and_only_by_its_check(good):
    stopped = {**good, "finish_reason": "repetition"}
    assert _judge(CheckConfig(), good) is None
    assert _judge(CheckConfig(), stopped) == "loop_stopped"
    assert _judge(CheckConfig(disabled=frozenset({"loop_stopped"})), stopped) is None
    assert _judge(paper_faithful(CheckConfig()), stopped) is None


def test_the_check_is_listed_where_the_cli_and_pack_look():
    assert "loop_stopped" in CHECKS and "loop_stopped" in THINKING_FILTERS
    assert CHECK_NAMES == CHECKS[1:]
