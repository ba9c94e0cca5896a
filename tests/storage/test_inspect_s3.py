"""`tpt inspect` of directories on object storage (a real S3-compatible server on 127.0.0.1, moto): an augment
run and a validate run written to s3:// by the stages themselves, the report written to s3:// too."""

from __future__ import annotations

import json

from tpt.cli import main
from tpt.testing.openai_stub import StubConfig, StubServer, augment_argv


def test_inspect_reads_and_writes_object_storage(s3, capsys):
    docs = b"".join(
        json.dumps(
            {"id": f"d{i}", "text": f"document {i} <b>bold</b> " + "word " * i, "source": f"s{i % 2}"}
        ).encode()
        + b"\n"
        for i in range(1, 9)
    )
    s3.put("corpus/a.jsonl", docs)
    with StubServer(StubConfig(latency_ms=1, words=30, schedule=(("document 3 ", ("400*",)),))) as stub:
        argv = augment_argv(s3.url("corpus/a.jsonl"), s3.url("aug"), stub.base_url, "--no-progress",
                            "--max-retries", "0")  # fmt: skip
        assert main(argv) == 0
    assert main(["validate", s3.url("aug"), "--output", s3.url("val")]) == 0
    capsys.readouterr()
    assert main(["inspect", s3.url("aug"), s3.url("val"), "--output", s3.url("report/r.html")]) == 0
    said = capsys.readouterr().out
    assert "augment 7 records" in said and "validate 7 records" in said
    html = s3.get("report/r.html").decode("utf-8")
    assert "<!DOCTYPE html>" in html and s3.url("aug") in html
    assert "\\u003cb\\u003ebold" in html and "<b>bold" not in html  # document text stays data
    assert "generation_failed" in html  # the failure of document 3
