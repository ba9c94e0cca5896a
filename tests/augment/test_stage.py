"""The augment stage with an in-test fake backend: records, failures, and exactly-once resume.

The real backends have their own tests (test_transformers_backend.py, test_openai_backend.py); here a
fake stands in so that crashes can be injected at exact points.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

import tpt.augment.stage as stage
from tpt.augment.backends.base import GenerationResult, SamplingParams
from tpt.augment.executors import LocalExecutor
from tpt.augment.stage import AugmentConfig
from tpt.core.errors import ConfigError, InputError


class FakeBackend:
    """Answers each request with '<think>' + a reversal of the document + '</think> answer'."""

    name = "fake"
    model_id = "fake-teacher"

    def __init__(self, crash_after: int | None = None, error_ids: tuple = ()):
        self.crash_after = crash_after
        self.error_ids = error_ids
        self.seen: list = []

    def truncate(self, texts, max_tokens):
        out = []
        for t in texts:
            words = t.split()
            out.append((" ".join(words[:max_tokens]), min(len(words), max_tokens), len(words) > max_tokens))
        return out

    def generate(self, requests, sampling):
        for n, req in enumerate(requests):
            if self.crash_after is not None and n >= self.crash_after:
                raise KeyboardInterrupt("injected crash")
            self.seen.append(req.meta["id"])
            if req.meta["id"] in self.error_ids:
                yield GenerationResult(key=req.key, error="server_error: 500 after 7 attempts", attempts=7)
                continue
            doc = req.meta["text"]
            yield GenerationResult(
                key=req.key,
                text=f"<think>\nthinking about {doc[::-1]}\n</think>\nfinal answer",
                prompt_tokens=len(req.messages[0]["content"].split()),
                completion_tokens=len(doc.split()) + 2,
            )

    def close(self):
        pass


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def make_cfg(inputs, out, **kw) -> AugmentConfig:
    return AugmentConfig(
        inputs=[str(i) for i in inputs],
        output=out,
        backend="fake",
        sampling=SamplingParams(max_tokens=64, seed=1),
        progress=False,
        **kw,
    )


def run_with(monkeypatch, backend, cfg):
    """stage.run with `backend` as the teacher of the local executor."""
    return stage.run(cfg, executor=LocalExecutor(lambda cfg: backend))


def read_records(out: Path) -> list[dict]:
    rows = []
    for p in sorted((out / "shards").glob("part-*.jsonl")):
        if not p.name.endswith(".failures.jsonl"):
            rows += [json.loads(line) for line in p.read_text().splitlines()]
    return rows


def corpus(tmp_path: Path, n: int = 10) -> Path:
    return write_jsonl(
        tmp_path / "docs.jsonl",
        [{"id": 100 + i, "text": f"doc {i} " + "w " * i, "source": "s", "license": "CC0"} for i in range(n)],
    )


def test_records_keep_ids_and_drop_the_final_answer(tmp_path, monkeypatch):
    summary = run_with(monkeypatch, FakeBackend(), make_cfg([corpus(tmp_path, 3)], tmp_path / "out"))
    recs = read_records(tmp_path / "out")
    assert [r["id"] for r in recs] == [100, 101, 102]  # ids unchanged, even when not strings
    assert recs[0]["thinking"] == f"thinking about {'doc 0'[::-1]}"
    assert "final answer" not in recs[0]["thinking"]
    assert recs[0]["thinking_method"] == "think_tags" and recs[0]["thinking_closed"] is True
    assert "stopped_by" in recs[0]
    assert recs[0]["meta"] == {"license": "CC0"} and recs[0]["source"] == "s"
    assert recs[0]["input"] == {"file": str(tmp_path / "docs.jsonl"), "line": 1, "index": 0}
    prov = recs[0]["provenance"]
    assert (
        prov["model"] == "fake-teacher" and prov["template"] == "paper" and prov["sampling"]["top_p"] == 0.9
    )
    assert summary.complete and summary.records == 3 and summary.failures == 0


def test_bad_input_is_reported_with_file_and_line_and_the_run_goes_on(tmp_path, monkeypatch):
    src = write_jsonl(
        tmp_path / "bad.jsonl",
        [
            {"id": "a", "text": "good one"},
            "{not json",
            {"id": "c", "body": "no text field"},
            {"id": "d", "text": "   "},
            {"id": "e", "text": 42},
            "[1, 2]",
            {"text": "no id here"},
        ],
    )
    summary = run_with(monkeypatch, FakeBackend(), make_cfg([src], tmp_path / "out"))
    fails = [json.loads(x) for x in (tmp_path / "out" / "failures.jsonl").read_text().splitlines()]
    assert [(f["line"], f["reason"]) for f in fails] == [
        (2, "malformed_line"),
        (3, "missing_field"),
        (4, "empty_document"),
        (5, "wrong_field_type"),
        (6, "malformed_line"),
    ]
    assert all(f["file"] == str(src) for f in fails)
    recs = read_records(tmp_path / "out")
    import hashlib

    # the record without an id gets a content-derived one
    assert [r["id"] for r in recs] == ["a", hashlib.sha256(b"no id here").hexdigest()[:16]]
    assert summary.records == 2 and summary.failures == 5 and summary.complete


def test_strict_makes_bad_input_fatal(tmp_path, monkeypatch):
    src = write_jsonl(tmp_path / "bad.jsonl", [{"id": 1, "text": "ok"}, "{oops"])
    with pytest.raises(InputError, match=r"bad.jsonl:2: malformed_line"):
        run_with(monkeypatch, FakeBackend(), make_cfg([src], tmp_path / "out", strict=True))


def test_generation_failures_are_recorded_not_fatal(tmp_path, monkeypatch):
    summary = run_with(
        monkeypatch, FakeBackend(error_ids=(101,)), make_cfg([corpus(tmp_path, 3)], tmp_path / "o")
    )
    assert summary.failures_by_reason == {"generation_failed": 1} and summary.records == 2


def test_crash_then_rerun_completes_exactly_once(tmp_path, monkeypatch):
    """A crash mid-run leaves partial shards; the re-run generates only what is missing."""
    src = corpus(tmp_path, 25)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_with(monkeypatch, FakeBackend(crash_after=13), make_cfg([src], out, shard_size=10))
    assert len(read_records(out)) == 10  # shard 0 committed; shard 1 partial
    partial = out / "shards" / "part-00000001.jsonl.partial"
    assert len(partial.read_text().splitlines()) == 3
    second = FakeBackend()
    summary = run_with(monkeypatch, second, make_cfg([src], out, shard_size=10))
    assert len(second.seen) == 12  # 25 - 13 already done
    recs = read_records(out)
    assert sorted(r["id"] for r in recs) == list(range(100, 125))
    assert summary.complete and not list((out / "shards").glob("*.partial"))
    third = FakeBackend()
    run_with(monkeypatch, third, make_cfg([src], out, shard_size=10))
    assert third.seen == []  # nothing left to do


def test_torn_last_line_is_cut_and_redone(tmp_path, monkeypatch):
    src = corpus(tmp_path, 6)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_with(monkeypatch, FakeBackend(crash_after=4), make_cfg([src], out, shard_size=10))
    partial = out / "shards" / "part-00000000.jsonl.partial"
    lines = partial.read_text().splitlines(keepends=True)
    partial.write_text("".join(lines[:3]) + lines[3][: len(lines[3]) // 2])  # a kill -9 mid-write
    second = FakeBackend()
    run_with(monkeypatch, second, make_cfg([src], out, shard_size=10))
    assert second.seen == [103, 104, 105]
    assert [r["id"] for r in read_records(out)] == list(range(100, 106))


def test_a_larger_limit_continues_a_committed_shard(tmp_path, monkeypatch):
    src = corpus(tmp_path, 8)
    out = tmp_path / "out"
    run_with(monkeypatch, FakeBackend(), make_cfg([src], out, limit=3))
    second = FakeBackend()
    summary = run_with(monkeypatch, second, make_cfg([src], out))
    assert second.seen == list(range(103, 108))
    assert [r["id"] for r in read_records(out)] == list(range(100, 108)) and summary.complete


def test_changed_config_refuses_unless_overridden(tmp_path, monkeypatch):
    src = corpus(tmp_path, 2)
    out = tmp_path / "out"
    run_with(monkeypatch, FakeBackend(), make_cfg([src], out))
    changed = AugmentConfig(
        inputs=[str(src)],
        output=out,
        backend="fake",
        progress=False,
        sampling=SamplingParams(max_tokens=64, seed=1, temperature=0.9),
    )
    with pytest.raises(ConfigError, match="sampling"):
        run_with(monkeypatch, FakeBackend(), changed)
    run_with(monkeypatch, FakeBackend(), AugmentConfig(**{**changed.__dict__, "overwrite_config": True}))


def test_compressed_and_parquet_inputs(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq
    import zstandard

    d = tmp_path / "in"
    d.mkdir()
    with gzip.open(d / "a.jsonl.gz", "wt") as f:
        f.write(json.dumps({"id": "g", "text": "gz doc"}) + "\n")
    (d / "b.jsonl.zst").write_bytes(
        zstandard.ZstdCompressor().compress((json.dumps({"id": "z", "text": "zst doc"}) + "\n").encode())
    )
    pq.write_table(pa.table({"id": ["p1", "p2"], "text": ["pq one", "pq two"]}), d / "c.parquet")
    run_with(monkeypatch, FakeBackend(), make_cfg([d], tmp_path / "out"))
    recs = read_records(tmp_path / "out")
    assert [r["id"] for r in recs] == ["g", "z", "p1", "p2"]
    assert recs[2]["input"]["line"] == 0  # parquet: row index


def test_documents_are_truncated_and_the_record_keeps_what_the_teacher_saw(tmp_path, monkeypatch):
    src = write_jsonl(tmp_path / "d.jsonl", [{"id": 1, "text": "one two three four five"}])
    run_with(monkeypatch, FakeBackend(), make_cfg([src], tmp_path / "out", max_doc_tokens=3))
    [rec] = read_records(tmp_path / "out")
    assert rec["text"] == "one two three" and rec["doc_tokens"] == 3 and rec["doc_truncated"] is True


def test_missing_input_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(InputError, match="matches no file"):
        run_with(monkeypatch, FakeBackend(), make_cfg([tmp_path / "nope*.jsonl"], tmp_path / "out"))


@pytest.mark.parametrize("stop_after", ["stats", "failures"])
def test_a_crash_inside_commit_is_settled_on_rerun(tmp_path, monkeypatch, stop_after):
    """commit() writes stats, then failures, then records (the commit point); a crash between any two
    steps must neither lose nor duplicate an outcome."""
    import tpt.augment.shardcommit as shards

    src = write_jsonl(tmp_path / "d.jsonl", [{"id": 1, "text": "a"}, "{bad", {"id": 3, "text": "c"}])
    out = tmp_path / "out"
    real_sort = shards._sort_lines

    def crashing_sort(files, partial, name, spans):
        if stop_after == "failures" and name.endswith(".failures.jsonl"):
            real_sort(files, partial, name, spans)
        raise KeyboardInterrupt("crash inside commit")

    monkeypatch.setattr(shards, "_sort_lines", crashing_sort)
    with pytest.raises(KeyboardInterrupt):
        run_with(monkeypatch, FakeBackend(), make_cfg([src], out))
    monkeypatch.setattr(shards, "_sort_lines", real_sort)
    second = FakeBackend()
    summary = run_with(monkeypatch, second, make_cfg([src], out))
    assert second.seen == []  # every outcome survived the crash
    assert [r["id"] for r in read_records(out)] == [1, 3]
    assert summary.records == 2 and summary.failures == 1 and summary.complete
    assert len((out / "failures.jsonl").read_text().splitlines()) == 1


def test_committed_shards_are_in_input_order(tmp_path, monkeypatch):
    class Reversing(FakeBackend):
        def generate(self, requests, sampling):
            yield from reversed(list(super().generate(requests, sampling)))

    run_with(monkeypatch, Reversing(), make_cfg([corpus(tmp_path, 5)], tmp_path / "out"))
    assert [r["id"] for r in read_records(tmp_path / "out")] == [100, 101, 102, 103, 104]


def _outcomes(out: Path) -> tuple[list, list]:
    """(record ids, failure (index, reason) pairs), committed and partial, every line."""
    records, failures = [], []
    for p in sorted((out / "shards").glob("part-*")):
        if ".stats." in p.name:
            continue
        rows = [json.loads(line) for line in p.read_text().splitlines()]
        if ".failures." in p.name:
            failures += [(r["index"], r["reason"]) for r in rows]
        else:
            records += [r["id"] for r in rows]
    return sorted(records), sorted(failures)


def test_retry_failed_redoes_failed_generations_once_and_keeps_input_problems(tmp_path, monkeypatch):
    """Shard 0 committed with a failure, shard 1 left partial by a crash with another: --retry-failed
    does both again, and only them; a malformed line stays a failure."""
    rows = [{"id": 100 + i, "text": f"doc number {i}"} for i in range(7)]
    rows[2] = "{bad"
    src = write_jsonl(tmp_path / "d.jsonl", rows)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_with(
            monkeypatch, FakeBackend(crash_after=5, error_ids=(101, 105)), make_cfg([src], out, shard_size=4)
        )
    assert (out / "shards" / "part-00000000.jsonl").exists()  # shard 0 (items 0-3) committed
    assert _outcomes(out)[1] == [(1, "generation_failed"), (2, "malformed_line"), (5, "generation_failed")]

    plain = FakeBackend()
    summary = run_with(monkeypatch, plain, make_cfg([src], out, shard_size=4))
    assert plain.seen == [106] and summary.failures_by_reason["generation_failed"] == 2

    retry = FakeBackend()
    summary = run_with(monkeypatch, retry, make_cfg([src], out, shard_size=4, retry_failed=True))
    assert sorted(retry.seen) == [101, 105] and summary.retried_this_run == 2
    records, failures = _outcomes(out)
    assert records == [100, 101, 103, 104, 105, 106] and failures == [(2, "malformed_line")]
    assert summary.complete and summary.failures_by_reason == {"malformed_line": 1}

    again = FakeBackend()
    summary = run_with(monkeypatch, again, make_cfg([src], out, shard_size=4, retry_failed=True))
    assert again.seen == [] and summary.retried_this_run == 0


@pytest.mark.parametrize("crash_at", ["partial_written", "records_moved", "failures_removed"])
def test_a_crash_inside_retry_failed_loses_nothing(tmp_path, monkeypatch, crash_at):
    """Whichever step of putting a committed shard back is interrupted, the next run ends with
    exactly one outcome per item."""
    import tpt.augment.shards as shards

    src = write_jsonl(tmp_path / "d.jsonl", [{"id": 100 + i, "text": f"doc {i}"} for i in range(3)])
    out = tmp_path / "out"
    run_with(monkeypatch, FakeBackend(error_ids=(101,)), make_cfg([src], out))
    real_replace, real_unlink = shards.os.replace, Path.unlink
    crashed = []

    def replace(a, b):
        real_replace(a, b)
        name = Path(b).name
        if (crash_at == "partial_written" and name.endswith(".failures.jsonl.partial")) or (
            crash_at == "records_moved" and name == "part-00000000.jsonl.partial"
        ):
            crashed.append(name)
            raise KeyboardInterrupt("crash inside retry")

    def unlink(self, missing_ok=False):
        real_unlink(self, missing_ok=missing_ok)
        if crash_at == "failures_removed" and self.name.endswith(".failures.jsonl"):
            crashed.append(self.name)
            raise KeyboardInterrupt("crash inside retry")

    monkeypatch.setattr(shards.os, "replace", replace)
    monkeypatch.setattr(Path, "unlink", unlink)
    with pytest.raises(KeyboardInterrupt):
        run_with(monkeypatch, FakeBackend(), make_cfg([src], out, retry_failed=True))
    monkeypatch.setattr(shards.os, "replace", real_replace)
    monkeypatch.setattr(Path, "unlink", real_unlink)
    assert len(crashed) == 1
    summary = run_with(monkeypatch, FakeBackend(), make_cfg([src], out, retry_failed=True))
    records, failures = _outcomes(out)
    assert records == [100, 101, 102] and failures == [] and summary.complete


# -- every bad input is named, none is silent ---------------------------------------------------------


def _failures(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "failures.jsonl").read_text().splitlines()]


def test_a_byte_order_mark_starts_the_file_not_a_malformed_line(tmp_path, monkeypatch):
    plain = tmp_path / "bom.jsonl"
    plain.write_bytes(
        b"\xef\xbb\xbf"
        + json.dumps({"id": 1, "text": "first"}).encode()
        + b"\n"
        + json.dumps({"id": 2, "text": "second"}).encode()
        + b"\n"
    )
    packed = tmp_path / "bom.jsonl.gz"
    packed.write_bytes(
        gzip.compress(plain.read_bytes().replace(b'"id": 1', b'"id": 3').replace(b'"id": 2', b'"id": 4'))
    )
    summary = run_with(monkeypatch, FakeBackend(), make_cfg([plain, packed], tmp_path / "out"))
    assert sorted(r["id"] for r in read_records(tmp_path / "out")) == [1, 2, 3, 4]
    assert summary.failures == 0


def test_invalid_utf8_is_an_input_failure_with_the_bytes_named(tmp_path, monkeypatch):
    src = tmp_path / "latin1.jsonl"
    src.write_bytes(
        b'{"id": 1, "text": "ok"}\n{"id": 2, "text": "caf\xe9 au lait"}\n{"id": 3, "text": "fine"}\n'
    )
    backend = FakeBackend()
    summary = run_with(monkeypatch, backend, make_cfg([src], tmp_path / "out"))
    [fail] = _failures(tmp_path / "out")
    assert (fail["line"], fail["reason"]) == (2, "invalid_utf8")
    assert "byte offset 22 of the line (e9" in fail["detail"] and "re-encode" in fail["detail"]
    recs = read_records(tmp_path / "out")
    assert [r["id"] for r in recs] == [1, 3] and not any("\ufffd" in r["text"] for r in recs)
    assert summary.failures_by_reason == {"invalid_utf8": 1} and backend.seen == [1, 3]


def test_a_lone_surrogate_fails_before_any_request(tmp_path, monkeypatch):
    src = write_jsonl(
        tmp_path / "s.jsonl",
        [
            '{"id": 1, "text": "broken \\ud800 text"}',
            '{"id": 2, "text": "an emoji \\ud83d\\ude00 is a valid pair"}',
            '{"id": 3, "text": "fine", "title": "\\udfff"}',
            '{"id": 4, "text": "a literal backslash-u: \\\\ud800"}',
        ],
    )
    backend = FakeBackend()
    summary = run_with(monkeypatch, backend, make_cfg([src], tmp_path / "out"))
    fails = _failures(tmp_path / "out")
    assert [(f["line"], f["reason"]) for f in fails] == [(1, "unencodable_text"), (3, "unencodable_text")]
    assert "field 'text' (character 7) holds a lone surrogate" in fails[0]["detail"]
    assert "field 'title'" in fails[1]["detail"]
    assert backend.seen == [2, 4]  # nothing was sent for the bad ones
    assert [r["text"] for r in read_records(tmp_path / "out")][0] == "an emoji \U0001f600 is a valid pair"
    assert summary.failures_by_reason == {"unencodable_text": 2}


BAD_LINES = [  # (line, the id its failure must carry, reason)
    (b'{"id": "surr", "text": "broken \\ud800 text"}', "surr", "unencodable_text"),
    (b'{"id": "lat", "text": "caf\xe9 au lait"}', "lat", "invalid_utf8"),
    (b'{"id": "cut", "text": "a line that ends in the mid', "cut", "malformed_line"),
    (b'{"text": "ok", "id": 7, "oops"}', 7, "malformed_line"),
    (b'{"id": "\\udc00x", "text": "the id itself holds a lone surrogate"}', None, "unencodable_text"),
    (b'{"id": "b\xe9d", "text": "a bad byte in the id"}', None, "invalid_utf8"),
    (b"[1, 2]", None, "malformed_line"),
]


def test_every_failure_carries_the_id_whenever_it_can_be_read(tmp_path, monkeypatch):
    """Issue 29: a line holding a lone surrogate (or a bad byte, or broken JSON) used to fail with
    "id": null although its id was readable. The line number is always there."""
    src = tmp_path / "bad.jsonl"
    src.write_bytes(b"".join(line + b"\n" for line, _, _ in BAD_LINES) + b'{"id": "good", "text": "fine"}\n')
    summary = run_with(monkeypatch, FakeBackend(), make_cfg([src], tmp_path / "out"))
    fails = _failures(tmp_path / "out")
    assert [(f["line"], f["id"], f["reason"]) for f in fails] == [
        (n, doc_id, reason) for n, (_, doc_id, reason) in enumerate(BAD_LINES, 1)
    ]
    assert [r["id"] for r in read_records(tmp_path / "out")] == ["good"]
    assert summary.failures == len(BAD_LINES)
    # another --id-field is read the same way
    src.write_bytes(b'{"doc": "d1", "text": "\\ud800"}\n')
    run_with(monkeypatch, FakeBackend(), make_cfg([src], tmp_path / "out2", id_field="doc"))
    assert [(f["line"], f["id"]) for f in _failures(tmp_path / "out2")] == [(1, "d1")]


def _dup_corpus(tmp_path: Path) -> Path:
    ids = ["a", "b", "a", "c", 1, "1", "b", "a"]  # 1 and "1" are different ids
    return write_jsonl(tmp_path / "dups.jsonl", [{"id": d, "text": f"doc {n}"} for n, d in enumerate(ids)])


def test_duplicate_ids_are_kept_and_reported_by_default(tmp_path, monkeypatch):
    out = tmp_path / "out"
    summary = run_with(monkeypatch, FakeBackend(), make_cfg([_dup_corpus(tmp_path)], out, shard_size=3))
    recs = sorted(read_records(out), key=lambda r: r["input"]["index"])
    assert len(recs) == 8 and [r.get("duplicate_of") for r in recs] == [None, None, 0, None, None, None, 1, 0]
    fails = _failures(out)
    assert [(f["index"], f["reason"], f["kept"]) for f in fails] == [
        (2, "duplicate_id", True),
        (6, "duplicate_id", True),
        (7, "duplicate_id", True),
    ]
    assert "the id of input item 0 again; kept both" in fails[0]["detail"]
    assert summary.duplicate_ids == 3 and summary.failures == 0 and summary.records == 8
    assert summary.complete


def test_keep_first_drops_later_duplicates_before_the_teacher_sees_them(tmp_path, monkeypatch):
    out = tmp_path / "out"
    backend = FakeBackend()
    summary = run_with(
        monkeypatch, backend, make_cfg([_dup_corpus(tmp_path)], out, shard_size=3, duplicate_ids="keep-first")
    )
    assert backend.seen == ["a", "b", "c", 1, "1"]
    assert [(f["index"], f["reason"]) for f in _failures(out)] == [
        (2, "duplicate_id"),
        (6, "duplicate_id"),
        (7, "duplicate_id"),
    ]
    assert summary.failures_by_reason == {"duplicate_id": 3} and summary.duplicate_ids == 3


@pytest.mark.parametrize("policy", ["keep-both", "keep-first"])
def test_duplicates_are_found_across_a_crash_and_resume(tmp_path, monkeypatch, policy):
    """The first occurrences of committed and partial shards are known to the resumed run."""
    src = _dup_corpus(tmp_path)
    whole = run_with(
        monkeypatch, FakeBackend(), make_cfg([src], tmp_path / "whole", shard_size=3, duplicate_ids=policy)
    )
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        run_with(
            monkeypatch, FakeBackend(crash_after=4), make_cfg([src], out, shard_size=3, duplicate_ids=policy)
        )
    resumed = run_with(monkeypatch, FakeBackend(), make_cfg([src], out, shard_size=3, duplicate_ids=policy))

    def outcome(o):
        recs = {r["input"]["index"]: r.get("duplicate_of") for r in read_records(o)}
        return recs, [(f["index"], f["reason"]) for f in _failures(o)]

    assert outcome(out) == outcome(tmp_path / "whole")
    assert resumed.duplicate_ids == whole.duplicate_ids == 3
