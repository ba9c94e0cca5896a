"""`tpt validate` end to end: kept lines byte for byte, rejected ones with reasons, counts that add up."""

import gzip
import json

import pytest

from tpt.cli import main
from tpt.core.errors import InputError
from tpt.formats.reading import read_records, resolve_record_files
from tpt.validate.stage import ValidateConfig, run


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines),
        encoding="utf-8",
    )
    return path


def test_kept_and_rejected_files_and_summary(tmp_path, good):
    src = write(
        tmp_path / "in.jsonl",
        [
            good,
            {**good, "id": 2, "finish_reason": "length"},
            "{broken",
            {**good, "id": 4, "thinking": "hi"},
            {**good, "id": 5, "source": "b"},
        ],
    )
    summary = run(ValidateConfig(inputs=[src], output=tmp_path / "val"))
    assert (summary.records, summary.kept, summary.rejected) == (5, 2, 3)
    assert summary.by_reason == {"malformed_json": 1, "too_short": 1, "truncated": 1}
    kept = (tmp_path / "val" / "kept.jsonl").read_text().splitlines()
    original = src.read_text().splitlines()
    assert kept == [original[0], original[4]]  # byte for byte
    rejected = [json.loads(x) for x in (tmp_path / "val" / "rejected.jsonl").read_text().splitlines()]
    assert [(r["input"]["line"], r["reason"]) for r in rejected] == [
        (2, "truncated"),
        (3, "malformed_json"),
        (4, "too_short"),
    ]
    assert rejected[0]["record"]["id"] == 2 and rejected[1]["line_text"] == "{broken"
    s = json.loads((tmp_path / "val" / "summary.json").read_text())
    assert s["by_source"] == {
        "b": {"kept": 1},
        "ula": {"kept": 1, "too_short": 1, "truncated": 1},
        "in": {"malformed_json": 1},
    }
    assert summary.to_json() == s and summary.by_source == s["by_source"] and s["wall_seconds"] >= 0
    manifest = json.loads((tmp_path / "val" / "manifest.json").read_text())
    assert manifest["stage"] == "validate"


def test_pack_input_resolution_reads_validate_and_augment_directories(tmp_path, good):
    aug = tmp_path / "aug"
    write(aug / "shards" / "part-00000001.jsonl", [{**good, "id": 2}])
    write(aug / "shards" / "part-00000000.jsonl", [good])
    write(aug / "shards" / "part-00000000.failures.jsonl", [{"file": "x", "reason": "backend"}])
    write(aug / "failures.jsonl", [{"file": "x", "reason": "backend"}])
    files = resolve_record_files([aug])
    assert [f.name for f in files] == ["part-00000000.jsonl", "part-00000001.jsonl"]
    run(ValidateConfig(inputs=[aug], output=tmp_path / "val"))
    assert [f.name for f in resolve_record_files([tmp_path / "val"])] == ["kept.jsonl"]
    assert [r.id for r in read_records(resolve_record_files([tmp_path / "val"]))] == [1, 2]


def test_plain_directories_and_compressed_files(tmp_path, good):
    import zstandard

    d = tmp_path / "plain"
    write(d / "a.jsonl", [good])
    with gzip.open(d / "sub" / "b.jsonl.gz", "wt") if (d / "sub").mkdir() is None else None as f:
        f.write(json.dumps({**good, "id": 2}) + "\n")
    (d / "c.jsonl.zst").write_bytes(
        zstandard.ZstdCompressor().compress((json.dumps({**good, "id": 3}) + "\n").encode())
    )
    write(d / "rejected.jsonl", [{"reason": "x"}])
    (d / "notes.txt").write_text("not records")
    records = list(read_records(resolve_record_files([d])))
    assert [r.id for r in records] == [1, 3, 2]  # sorted by path: a, c, sub/b
    assert records[0].source == "ula" and records[0].line == 1
    with pytest.raises(InputError, match="holds no"):
        resolve_record_files([tmp_path / "empty"]) if (tmp_path / "empty").mkdir() is None else None
    with pytest.raises(InputError, match="does not exist"):
        resolve_record_files([tmp_path / "missing.jsonl"])
    with pytest.raises(InputError, match="expected a"):
        resolve_record_files([d / "notes.txt"])


def test_source_defaults_to_the_file_name(tmp_path, good):
    src = write(tmp_path / "fineweb-edu.part1.jsonl", [{k: v for k, v in good.items() if k != "source"}])
    [r] = read_records([src])
    assert r.source == "fineweb-edu"


def test_cli_runs_and_reports_errors_without_traceback(tmp_path, good, capsys):
    src = write(tmp_path / "in.jsonl", [good, {**good, "finish_reason": "length"}])
    assert main(["validate", str(src), "--output", str(tmp_path / "v"), "--disable-check", "truncated"]) == 0
    assert "2 kept, 0 rejected" in capsys.readouterr().out
    assert main(["validate", str(tmp_path / "nope.jsonl"), "--output", str(tmp_path / "v2")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["validate", str(src), "--output", str(tmp_path / "v3"), "--max-copy", "2"]) == 2
    assert "--max-copy" in capsys.readouterr().err


def test_every_bad_input_is_named_as_in_augment(tmp_path, good):
    """BOM accepted; invalid UTF-8 and lone surrogates named (not malformed_json, nothing replaced)."""
    src = tmp_path / "in.jsonl"
    src.write_bytes(
        b"\xef\xbb\xbf"
        + json.dumps({**good, "id": 1}).encode()
        + b"\n"
        + json.dumps({**good, "id": 2}).encode().replace(b"A matrix", b"A m\xe4trix", 1)
        + b"\n"
        + json.dumps({**good, "id": 3}).encode().replace(b"A matrix", b"A ma\\ud800trix", 1)
        + b"\n"
    )
    summary = run(ValidateConfig(inputs=[src], output=tmp_path / "val"))
    assert (summary.kept, summary.by_reason) == (1, {"invalid_utf8": 1, "unencodable_text": 1})
    rejected = [json.loads(x) for x in (tmp_path / "val" / "rejected.jsonl").read_text().splitlines()]
    assert [r["input"]["line"] for r in rejected] == [2, 3]
    assert "byte offset" in rejected[0]["detail"] and "field 'text'" in rejected[1]["detail"]


def test_every_rejected_bad_line_carries_the_id_whenever_it_can_be_read(tmp_path, good):
    """Issue 29: the id of a bad line is read whenever it can be (and the line number is always there)."""
    line = json.dumps({**good, "id": "surr"}).encode()
    lines = [
        (line.replace(b"A matrix", b"A ma\\ud800trix", 1), "surr", "unencodable_text"),
        (
            json.dumps({**good, "id": "lat"}).encode().replace(b"A matrix", b"A m\xe4trix", 1),
            "lat",
            "invalid_utf8",
        ),
        (b'{"id": "cut", "text": "a line that ends in the mid', "cut", "malformed_json"),
        (b'{"id": "\\udc00x", "text": "the id itself holds a lone surrogate"}', None, "unencodable_text"),
        (b"[1, 2]", None, "not_an_object"),
    ]
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"".join(raw + b"\n" for raw, _, _ in lines) + json.dumps(good).encode() + b"\n")
    summary = run(ValidateConfig(inputs=[src], output=tmp_path / "val"))
    assert summary.kept == 1
    rejected = [json.loads(x) for x in (tmp_path / "val" / "rejected.jsonl").read_text().splitlines()]
    assert [(r["input"]["line"], r["id"], r["reason"]) for r in rejected] == [
        (n, doc_id, reason) for n, (_, doc_id, reason) in enumerate(lines, 1)
    ]


@pytest.mark.parametrize("policy", ["keep-both", "keep-first"])
def test_duplicate_ids_are_reported_and_kept_or_rejected(tmp_path, good, policy):
    src = write(tmp_path / "in.jsonl", [{**good, "id": i} for i in ("a", "b", "a", "a", 1, "1")])
    summary = run(ValidateConfig(inputs=[src], output=tmp_path / "val", duplicate_ids=policy))
    assert summary.duplicate_ids == 2
    listed = json.loads((tmp_path / "val" / "summary.json").read_text())["duplicate_ids"]
    assert listed["count"] == 2 and [d["line"] for d in listed["listed"]] == [3, 4]
    assert listed["listed"][0]["detail"].startswith("the id of input item 0 again")
    if policy == "keep-both":
        assert summary.kept == 6
    else:
        assert summary.kept == 4 and summary.by_reason == {"duplicate_id": 2}
