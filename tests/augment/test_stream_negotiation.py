"""A streamed request (the loop guard on) answered with something other than an event stream.

A server or proxy that ignores `"stream": true` answers with one JSON body: it is read as a plain
completion, said once (stderr, summary.json), and judged by the loop guard after generation. Anything
else (an HTML page) stops the run at once with the URL and the first bytes, never a run of failures.
Every test goes through aiohttp and the stub on 127.0.0.1.
"""

from __future__ import annotations

import io
import json

import pytest

pytest.importorskip("aiohttp")

from tpt.augment.backends.base import GenerationRequest, SamplingParams  # noqa: E402
from tpt.augment.backends.openai_http import build  # noqa: E402
from tpt.augment.loopguard import LoopGuardOptions  # noqa: E402
from tpt.cli import main  # noqa: E402
from tpt.core.errors import EXIT_SERVER_UNUSABLE, ServerUnusableError  # noqa: E402
from tpt.testing.openai_stub import LOOP_UNIT, StubConfig, StubServer, augment_argv, expected_thinking  # noqa: E402

ON, OFF = LoopGuardOptions(), LoopGuardOptions(enabled=False)


def req(i: int) -> GenerationRequest:
    return GenerationRequest(
        key=i, messages=({"role": "user", "content": f"Doc {i} on the primes."},), seed=i
    )


def run(stub, n, guard=ON, max_tokens=600):
    backend = build({"model": "stub", "base_url": stub.base_url, "max_retries": 0, "concurrency": 4})
    backend.notice_stream = io.StringIO()
    try:
        results = list(
            backend.generate(
                [req(i) for i in range(n)], SamplingParams(max_tokens=max_tokens, loop_guard=guard)
            )
        )
    finally:
        backend.close()
    return sorted(results, key=lambda r: r.key), backend


@pytest.mark.parametrize("mode", ["ignore", "mislabeled"])
def test_a_json_answer_to_a_streamed_request_is_read_as_a_plain_completion(mode):
    with StubServer(StubConfig(latency_ms=1, words=40, think="tags")) as stub:
        plain, _ = run(stub, 6, guard=OFF)
    with StubServer(StubConfig(latency_ms=1, words=40, think="tags", stream_mode=mode)) as stub:
        got, backend = run(stub, 6)
        assert all(b["stream"] is True for b in stub.stats.bodies)  # it was asked to stream
    assert got == plain and all(r.error is None and r.completion_tokens > 0 for r in got)
    note = backend.notice_stream.getvalue()
    assert note.count("\n") == 1 and 'ignores "stream"' in note  # said once, not once per document
    assert "6 answers" in backend.notices["stream_ignored"]
    assert backend.stats["unstreamed"] == 6


def test_the_loop_guard_judges_an_unstreamed_answer_after_generation():
    config = StubConfig(latency_ms=1, loop_after=30, loop_rate=0.5, words=80, stream_mode="ignore")
    with StubServer(config) as stub:
        got, _ = run(stub, 12, max_tokens=800)
    looped = [r for r in got if r.finish_reason == "repetition"]
    kept = [r for r in got if r.finish_reason == "stop"]
    assert looped and kept and len(looped) + len(kept) == 12
    for r in looped:  # cut where the loop began, flagged as a streamed stop is, every token counted
        head = expected_thinking(req(r.key).messages[0]["content"], 800, loop_after=30)
        assert head.startswith(r.text) and len(r.text.split()) in range(29, 32)
        assert LOOP_UNIT[0] not in r.text.split()[:29]
        assert r.stop == "loop_guard" and 0 <= r.loop_start <= 32 and r.completion_tokens == 800
    assert all(len(r.text.split()) == 80 for r in kept)


def test_an_html_page_stops_the_run_with_the_url_and_the_first_bytes():
    with StubServer(StubConfig(latency_ms=1, stream_mode="html")) as stub:
        with pytest.raises(ServerUnusableError) as err:
            run(stub, 3)
    message = str(err.value)
    assert f"{stub.base_url}/chat/completions" in message and "text/html" in message
    assert "<!DOCTYPE html>" in message and "--loop-guard off" in message


def test_the_default_command_makes_records_and_says_so_in_summary_json(tmp_path, capsys):
    src, out = tmp_path / "docs.jsonl", tmp_path / "out"
    src.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": f"Document {i} on graphs."}) + "\n" for i in range(10))
    )
    with StubServer(StubConfig(latency_ms=1, words=30, stream_mode="ignore")) as stub:
        rc = main(augment_argv(src, out, stub.base_url, "--no-progress"))
    err = capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert rc == 0 and summary["records"] == 10 and summary["failures"] == 0
    assert err.count('ignores "stream"') == 1
    assert "10 answers" in summary["notices"]["stream_ignored"]


def test_the_html_server_exits_with_the_unusable_status(tmp_path, capsys):
    src, out = tmp_path / "docs.jsonl", tmp_path / "out"
    src.write_text("".join(json.dumps({"id": f"d{i}", "text": f"Document {i}."}) + "\n" for i in range(5)))
    with StubServer(StubConfig(latency_ms=1, stream_mode="html")) as stub:
        rc = main(augment_argv(src, out, stub.base_url, "--no-progress"))
    err = capsys.readouterr().err
    assert rc == EXIT_SERVER_UNUSABLE and err.count("\n") == 1 and "not server-sent events" in err
