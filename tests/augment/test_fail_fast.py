"""Fail fast and loudly: a teacher that fails every document stops the run after the first --fail-fast
documents with exit status 4 and one line (class, sample, likely fix); a run that ends with more failures
than records, or none, exits 3 with the counts. Against the stub on 127.0.0.1, through `tpt augment`."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("aiohttp")

from tpt.augment.failfast import FailFast, error_class  # noqa: E402
from tpt.cli import build_parser, main  # noqa: E402
from tpt.core.errors import EXIT_FAILURES, EXIT_OK, EXIT_SERVER_UNUSABLE, ServerUnusableError  # noqa: E402
from tpt.testing.openai_stub import StubConfig, StubServer, augment_argv  # noqa: E402

FAST = ("--no-progress", "--max-retries", "0", "--concurrency", "8", "--loop-guard", "off")


def corpus(tmp_path, n: int):
    src = tmp_path / "docs.jsonl"
    src.write_text(
        "".join(json.dumps({"id": f"d{i}", "text": f"Document {i} on sets."}) + "\n" for i in range(n))
    )
    return src, tmp_path / "out"


def lines(path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_server_failing_everything_stops_after_the_first_n_and_records_nothing(tmp_path, capsys):
    src, out = corpus(tmp_path, 60)
    with StubServer(StubConfig(latency_ms=1, schedule=(("Document", ("503*",)),))) as stub:
        rc = main(augment_argv(src, out, stub.base_url, *FAST, "--fail-fast", "16"))
        requests = stub.stats.requests
    err = capsys.readouterr().err.strip()
    assert rc == EXIT_SERVER_UNUSABLE and "\n" not in err
    assert "the first 16 documents all failed (server_error)" in err and "HTTP 503" in err
    assert "Likely fix: the server fails every request" in err
    assert requests < 60  # it stopped: the rest of the corpus was never sent
    assert lines(out / "failures.jsonl") == [] and not list((out / "shards").glob("part-*.jsonl"))
    with StubServer(StubConfig(latency_ms=1, words=10)) as stub:  # fixed: the same command does them all
        assert main(augment_argv(src, out, stub.base_url, *FAST, "--fail-fast", "16")) == EXIT_OK
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["records"], summary["failures"]) == (60, 0)


def test_garbage_bodies_name_the_class_and_the_check(tmp_path, capsys):
    src, out = corpus(tmp_path, 40)
    with StubServer(StubConfig(latency_ms=1, schedule=(("Document", ("garbage*",)),))) as stub:
        rc = main(augment_argv(src, out, stub.base_url, *FAST))
    err = capsys.readouterr().err
    assert rc == EXIT_SERVER_UNUSABLE and "the first 32 documents all failed (bad_response)" in err
    assert "--check-server" in err


def test_a_short_run_of_only_failures_exits_3_with_the_counts(tmp_path, capsys):
    src, out = corpus(tmp_path, 6)
    with StubServer(StubConfig(latency_ms=1, schedule=(("Document", ("500*",)),))) as stub:
        rc = main(augment_argv(src, out, stub.base_url, *FAST))
    err = capsys.readouterr().err
    assert rc == EXIT_FAILURES and "6 failures and 0 records of 6 input items" in err
    assert len(lines(out / "failures.jsonl")) == 6  # fewer than --fail-fast: recorded at the end


def test_more_failures_than_records_exits_3_and_fewer_exits_0(tmp_path, capsys):
    bad = tuple((f"Document {i} ", ("500*",)) for i in range(7))  # 7 of 10 fail
    src, out = corpus(tmp_path, 10)
    with StubServer(StubConfig(latency_ms=1, words=8, schedule=bad)) as stub:
        assert main(augment_argv(src, out, stub.base_url, *FAST)) == EXIT_FAILURES
    assert "7 failures and 3 records" in capsys.readouterr().err
    (tmp_path / "b").mkdir()
    src, out = corpus(tmp_path / "b", 10)
    with StubServer(StubConfig(latency_ms=1, words=8, schedule=bad[:3])) as stub:
        assert main(augment_argv(src, out, stub.base_url, *FAST)) == EXIT_OK
    assert len(lines(out / "failures.jsonl")) == 3


def test_failures_before_the_first_success_are_written_once_it_comes():
    written = []
    fast = FailFast(4, lambda *f: written.append(f))
    fast.failed("a", detail="timeout: no answer within 1s")
    fast.failed("b", detail="timeout: no answer within 1s")
    assert written == []
    fast.succeeded()
    fast.failed("c", detail="server_error: HTTP 500")
    assert written == [("a",), ("b",), ("c",)]
    mixed = FailFast(3, lambda *f: None)
    mixed.failed("x", detail="timeout: t")
    mixed.failed("y", detail="connection: reset")
    with pytest.raises(ServerUnusableError, match=r"all failed \(timeout x2, connection x1\)"):
        mixed.failed("z", detail="timeout: t")
    assert error_class("RuntimeError: CUDA out of memory") == "RuntimeError" and error_class("?!") == "error"


def test_the_exit_statuses_are_in_the_help():
    text = build_parser("augment")._subparsers._group_actions[0].choices["augment"].format_help()
    assert "exit status:" in text and "3  finished with failures" in text and "4  stopped" in text
    assert "--check-server" in text and "--fail-fast N" in text
