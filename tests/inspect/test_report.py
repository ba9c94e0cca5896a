"""`tpt inspect` without a browser: the counts equal a full parse of the files, the fast field reader never
differs from json.loads, the sample is seeded and covers every group, and bad input is one line."""

from __future__ import annotations

import json
import re
import shlex
from collections import Counter
from pathlib import Path

import pytest

from tpt.cli import main
from tpt.formats.reading import record_file_lines
from tpt.inspect.dirs import read_dir
from tpt.inspect.render import safe_json
from tpt.inspect.scan import BIN_EDGES, _slow, bin_index, fields_of


def record_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _shard_records(aug: Path) -> list[dict]:
    return [r for p in sorted((aug / "shards").glob("part-*[0-9].jsonl")) for r in record_lines(p)]


def test_augment_counts_are_those_of_a_full_parse(pipeline):
    recs = _shard_records(pipeline.aug)
    failures = [f for f in record_lines(pipeline.aug / "failures.jsonl") if not f.get("kept")]
    d = read_dir(pipeline.aug, per_group=5, seed=0, scatter=100)
    t = d.tally
    assert d.kind == "augment" and t.records == len(recs) == 44
    assert t.by_source == Counter(r["source"] for r in recs)
    assert t.by_finish == Counter(r["finish_reason"] for r in recs)
    assert t.loop_stopped == sum(r["finish_reason"] == "repetition" for r in recs) > 0
    assert t.by_finish["length"] > 0
    assert d.failures == Counter(f["reason"] for f in failures) and sum(d.failures.values()) == 6
    assert t.doc_tokens == sum(r["doc_tokens"] for r in recs)
    assert t.generated_tokens == sum(r["completion_tokens"] for r in recs)
    # the thinking of a stopped trajectory is what came before the loop
    think = sorted(r["loop"]["start_token"] if r.get("loop") else r["completion_tokens"] for r in recs)
    assert t.lengths.thinking.n == len(recs) and t.lengths.thinking.total == sum(think)
    assert t.lengths.thinking.max == think[-1]
    assert [bin_index(v) for v in think] == sorted(bin_index(v) for v in think)
    assert sum(t.lengths.thinking.counts) == len(recs)
    # the one document with a reasoning-intensity score is the scatter's one point
    hostile = [r for r in recs if r["id"] == "hostile/1"]
    assert t.intensity == [(1.5, hostile[0]["completion_tokens"])]


def test_validate_and_pack_counts(pipeline):
    val = json.loads((pipeline.val / "summary.json").read_text())
    d = read_dir(pipeline.val, per_group=5, seed=0, scatter=100)
    assert d.kind == "validate" and d.tally.records == val["records"]
    assert d.tally.by_check["kept"] == val["kept"]
    assert {k: v for k, v in d.tally.by_check.items() if k != "kept"} == val["by_reason"]
    stats = json.loads((pipeline.pack / "stats.json").read_text())
    p = read_dir(pipeline.pack, per_group=5, seed=0, scatter=100)
    assert p.kind == "pack" and p.tally.records == stats["records"]["read"]
    skipped = {k: v for k, v in p.tally.by_check.items() if k != "packed"}
    assert skipped == stats["skipped"] and p.tally.by_check["packed"] == stats["records"]["packed"]
    for s in p.samples:  # each sampled record carries the reason skipped.jsonl gives for its line
        assert s.check == "packed" or s.detail


def test_the_fast_reader_equals_json_loads_on_every_line(pipeline):
    lines = [
        line
        for path in [
            *sorted((pipeline.aug / "shards").glob("part-*[0-9].jsonl")),
            pipeline.val / "kept.jsonl",
        ]
        for line in path.read_bytes().splitlines(keepends=True)
    ]
    assert lines
    for raw in lines:
        assert fields_of(raw, "x") == _slow(raw, "x")


@pytest.mark.parametrize(
    "obj",
    [
        # a document that spells the keys the fast path looks for, with and without escapes
        {"id": 1, "text": 'x", "finish_reason": "stop", "doc_tokens": 9, "completion_tokens": 9, '
         '"source": "fake", "meta": {', "thinking": "t", "finish_reason": "length", "doc_tokens": 3,
         "completion_tokens": 4, "source": "real", "meta": {}},
        {"id": 2, "text": "\\", "thinking": '\\"finish_reason\\": ', "finish_reason": "stop", "doc_tokens": 1,
         "completion_tokens": 2, "source": "s", "meta": {"reasoning_intensity": 2.5}},
        # keys nested before the top level ones: the fast path must not take them
        {"meta": {"finish_reason": "stop", "doc_tokens": 1, "completion_tokens": 1, "source": "nested"},
         "text": "t", "finish_reason": "length", "doc_tokens": 5, "completion_tokens": 6, "source": "top"},
        {"x": {"finish_reason": "stop", "doc_tokens": 1, "completion_tokens": 1, "source": "n", "meta": {}},
         "text": "t", "doc_tokens": 5, "completion_tokens": 6, "source": "top"},
        {"text": "plain corpus line without token counts", "source": "plain"},
        {"text": "", "thinking": "no text"},
    ],
)  # fmt: skip
def test_the_fast_reader_is_not_fooled(obj):
    for raw in (json.dumps(obj).encode(), json.dumps(obj, ensure_ascii=False).encode()):
        assert fields_of(raw, "default") == _slow(raw, "default") == _slow(raw, "default")
    f = fields_of(json.dumps(obj).encode(), "default")
    if not isinstance(f, str):
        assert f.source == obj.get("source", "default")


def test_bins_cover_every_length():
    assert [bin_index(v) for v in BIN_EDGES] == list(range(len(BIN_EDGES)))
    for v in range(0, 200000, 7):
        i = bin_index(v)
        assert BIN_EDGES[i] <= v and (i + 1 == len(BIN_EDGES) or v < BIN_EDGES[i + 1])


def test_the_sample_is_seeded_and_covers_every_group(pipeline):
    a = read_dir(pipeline.val, per_group=2, seed=0, scatter=10).samples
    b = read_dir(pipeline.val, per_group=2, seed=0, scatter=10).samples
    c = read_dir(pipeline.val, per_group=2, seed=1, scatter=10).samples
    key = [(s.file, s.line) for s in a]
    assert key == [(s.file, s.line) for s in b] and key != [(s.file, s.line) for s in c]
    t = read_dir(pipeline.val, per_group=2, seed=0, scatter=10).tally
    groups = Counter((src, chk) for src, per in t.check_by_source.items() for chk in per)
    assert len(a) == sum(min(2, t.check_by_source[src][chk]) for src, chk in groups)


def test_embedded_json_cannot_end_its_script_element():
    value = {"text": "</script><script>alert(1)</script><!-- & \u2028 </think>"}
    text = safe_json(value)
    assert "<" not in text and ">" not in text and "&" not in text and "\u2028" not in text
    assert json.loads(text) == value


def test_the_report_is_self_contained(pipeline, tmp_path):
    out = tmp_path / "r.html"
    assert (
        main(["inspect", str(pipeline.aug), str(pipeline.val), str(pipeline.pack), "--output", str(out)]) == 0
    )
    html = out.read_text(encoding="utf-8")
    head, data = html.split('<script type="application/json" id="tpt-data">')
    data, tail = data.split("</script>", 1)
    markup = head + tail
    links = re.findall(r'(?:src|href|action)="([^"]*)"', markup)
    assert links and all(link.startswith("#") for link in links)  # nothing is fetched, no link leaves
    assert markup.count("<script") == 1 and "@import" not in markup and "url(" not in markup
    assert "<script>document.title" not in html and "\\u003cscript\\u003edocument.title" in data


def test_stages_end_with_the_report_command_and_it_works(pipeline, tmp_path, capsys):
    val = tmp_path / "val"
    assert main(["validate", str(pipeline.aug), "--output", str(val)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == f"report: tpt inspect {val} --output {val}/report.html"
    assert main(shlex.split(err[-1].removeprefix("report: tpt "))) == 0
    assert "<!DOCTYPE html>" in (val / "report.html").read_text()


def test_a_pack_whose_inputs_are_gone_still_reports_its_figures(pipeline, tmp_path):
    import shutil

    aug = tmp_path / "aug"
    shutil.copytree(pipeline.aug, aug)
    tok = pipeline.root / "tok"
    argv = ["pack", str(aug), "--output", str(tmp_path / "pack"), "--tokenizer", str(tok), "--seq-len", "256",
            "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    shutil.rmtree(aug)
    d = read_dir(tmp_path / "pack", per_group=2, seed=0, scatter=10)
    assert d.tally.records == 0 and "are gone" in d.notes[0]
    assert main(["inspect", str(tmp_path / "pack"), "--output", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert "are gone" in html and "Tokens by span kind" in html


def _unfinished_pack(p: Path) -> Path:
    (p / "pack").mkdir()
    (p / "pack" / "manifest.json").write_text(json.dumps({"stage": "pack", "config": {}}))
    return p / "pack"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing", "is not a directory"),
        (lambda p: p, "is not a tpt augment, validate or pack output directory"),
        (lambda p: _unfinished_pack(p), "without stats.json: has the pack finished?"),
    ],
)
def test_a_directory_that_is_no_tpt_output_is_one_line(tmp_path, capsys, make, message):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["inspect", str(make(tmp_path)), "--output", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("tpt inspect: error: ") and message in err
    assert not (tmp_path / "r.html").exists()


def test_the_cost_of_a_tpt_estimate_sample_is_shown(tmp_path, pipeline):
    from tpt.testing.openai_stub import StubConfig, StubServer

    est = tmp_path / "est"
    with StubServer(StubConfig(latency_ms=1, words=30)) as server:
        argv = ["estimate", str(pipeline.corpus), "--sample", "4", "--output", str(est), "--backend", "openai",
                "--model", "stub", "--base-url", server.base_url, "--no-progress", "--gpu-throughput", "1000"]  # fmt: skip
        assert main(argv) == 0
    projection = json.loads((est / "estimate.json").read_text())["projection"]
    d = read_dir(est, per_group=2, seed=0, scatter=10)
    assert d.kind == "augment" and d.tally.records == 4 and d.estimate["projection"] == projection
    out = tmp_path / "r.html"
    assert main(["inspect", str(est), "--output", str(out)]) == 0
    html = out.read_text()
    assert "Cost (tpt estimate)" in html and f"{projection['gpu_hours']:,.4g}" in html


def test_the_reservoir_is_uniform_and_bounded():
    from tpt.inspect.scan import Reservoir

    deciles = Counter()
    for seed in range(300):
        r = Reservoir(10, seed, max_groups=2)
        for i in range(1000):
            r.add(("s", "kept"), i)
        r.add(("t", "kept"), -1)
        r.add(("u", "kept"), -2)  # a third group: pooled into (other)
        picked = r.items()
        assert len(picked) == 12 and len(set(picked)) == 12
        deciles.update(i // 100 for i in picked if i >= 0)
    # 3000 picks, 300 a decile expected; 4.5 sigma (sigma ~ 16) either side
    assert all(230 <= deciles[d] <= 370 for d in range(10)), deciles


def test_parquet_shards_count_as_their_jsonl_lines(pipeline, tmp_path):
    from tpt.testing.openai_stub import StubConfig, StubServer

    out = tmp_path / "aug"
    with StubServer(StubConfig(latency_ms=1, words=60, length_rate=0.15)) as server:
        argv = ["augment", str(pipeline.corpus), "--output", str(out), "--backend", "openai", "--model", "stub",
                "--base-url", server.base_url, "--no-progress", "--output-format", "parquet"]  # fmt: skip
        assert main(argv) == 0
    assert list((out / "shards").glob("part-*.parquet"))
    recs = [json.loads(line) for _, line in record_file_lines(next((out / "shards").glob("part-*.parquet")))]
    d = read_dir(out, per_group=3, seed=0, scatter=10)
    assert d.tally.records == len(recs) == 50 and sum(d.tally.unreadable.values()) == 0
    assert d.tally.by_finish == Counter(r["finish_reason"] for r in recs)
    assert d.tally.doc_tokens == sum(r["doc_tokens"] for r in recs)
