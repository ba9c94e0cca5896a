"""`tpt pack` killed with SIGKILL just before its k-th commit (pack/commits.py), then run again: the shards the
earlier commits cover are not written again, and every output file is byte-identical to an uninterrupted run,
with the shuffle, --mix/--weights, duplicate ids, bad lines, Megatron output and --control shuffled."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Runs `tpt pack`, counting commits in COUNT and shard writes in COUNT.shards; with KILL_AT=n it
# SIGKILLs itself at the n-th commit (after that commit's shards are written, before it is made).
DRIVER = """
import os, signal, sys
from pathlib import Path
from tpt.formats import packwriter
from tpt.pack import inputunits
from tpt.pack import commits
count, kill_at = Path(sys.argv[1]), int(sys.argv[2])
shards = count.with_name(count.name + ".shards")
parsed = count.with_name(count.name + ".parsed")
def bump(path):
    n = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(n))
    return n
real_commit, real_write = commits.CommitBook.commit, packwriter.ShardWriter._close_shard
def commit(self, *a, **k):
    if bump(count) == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return real_commit(self, *a, **k)
def write(self, *a, **k):
    bump(shards)
    return real_write(self, *a, **k)
commits.CommitBook.commit, packwriter.ShardWriter._close_shard = commit, write
real_parse, seen = inputunits.parse_line, [0]
def parse(*a):
    seen[0] += 1
    parsed.write_text(str(seen[0]))
    return real_parse(*a)
inputunits.parse_line = parse
from tpt.cli import main
sys.exit(main(sys.argv[3:]))
"""

WORDS = "the cat sat on mat a dog ran why because it was tired so fast home".split()


def corpus(root: Path) -> tuple[Path, int]:
    """3 files of 40 lines: two sources, thinking of 20 to 38 words, every 9th too short, ids that
    repeat across files, and one malformed line."""
    root.mkdir()
    lines = 0
    for f in range(3):
        with (root / f"part-{f:08d}.jsonl").open("w") as out:
            for i in range(40):
                n = 20 + (i * 7 + f) % 19
                thinking = " ".join(WORDS[(i + k) % len(WORDS)] for k in range(n if i % 9 else 5))
                text = " ".join(WORDS[(i * 3 + k) % len(WORDS)] for k in range(4 + i % 6))
                doc_id = i if i % 6 == 0 else f"{f}-{i}"
                rec = {"id": doc_id, "text": text, "thinking": thinking, "source": "ab"[i % 2]}
                out.write((json.dumps(rec) if (f, i) != (1, 17) else "{not json") + "\n")
                lines += 1
    return root, lines


def pack(tmp: Path, args: list[str], out: Path, count: Path, kill_at: int) -> int:
    script = tmp / "driver.py"
    script.write_text(DRIVER)
    argv = [sys.executable, str(script), str(count), str(kill_at), "pack", *args, "--output", str(out)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300).returncode


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "options",
    [
        [
            "--mix",
            "0.3",
            "--weights",
            "a=1.5,b=0.5",
            "--shuffle-buffer",
            "25",
            "--megatron",
            "--workers",
            "1",
        ],
        [
            "--control",
            "shuffled",
            "--shuffle-buffer",
            "10",
            "--duplicate-ids",
            "keep-first",
            "--workers",
            "0",
        ],
    ],
    ids=["mix-weights-shuffle", "control-shuffled"],
)
def test_kill_nine_then_resume_redoes_no_committed_shard(
    tmp_path: Path, word_tok: Path, options: list[str]
) -> None:
    src, lines = corpus(tmp_path / "records")
    args = [str(src), "--tokenizer", str(word_tok), "--seq-len", "16", "--shard-tokens", "64",
            "--batch-size", "8", "--disable-check", "copy", "--disable-check", "repetition",
            "--min-thinking-words", "10", "--no-progress", *options]  # fmt: skip
    whole, out = tmp_path / "whole", tmp_path / "out"
    assert pack(tmp_path, args, whole, tmp_path / "n0", 0) == 0
    total_shards = int((tmp_path / "n0.shards").read_text())
    commits = int((tmp_path / "n0").read_text())
    assert commits >= 6 and total_shards > commits  # several commits, some covering more than one shard

    kill_at = 5
    assert pack(tmp_path, args, out, tmp_path / "n1", kill_at) == -9
    committed = json.loads((out / "parts" / f"{kill_at - 2:05d}.json").read_text())
    assert not (out / "parts" / f"{kill_at - 1:05d}.json").exists()
    assert not (out / "index.json").exists()  # not a finished pack
    assert pack(tmp_path, args, out, tmp_path / "n2", 0) == 0

    # Shard work: the resumed run wrote exactly the shards the first four commits did not cover.
    assert 0 < committed["shards"] < total_shards
    assert int((tmp_path / "n2.shards").read_text()) == total_shards - committed["shards"]
    assert int((tmp_path / "n2").read_text()) == commits - (kill_at - 1)
    # Input: the resumed run seeks to the committed byte position; it parses only the lines after it
    # (and, with --control shuffled, reads the whole input for pass 1 again).
    passes = 2 if "--control" in options else 1
    assert int((tmp_path / "n0.parsed").read_text()) == passes * lines
    assert int((tmp_path / "n2.parsed").read_text()) == passes * lines - committed["items"]

    made, want = files(out), files(whole)
    assert sorted(made) == sorted(want)  # parts/ and the spill are gone, nothing extra
    for name in want:
        if name not in ("manifest.json", "stats.json"):
            assert made[name] == want[name], name
    stats = json.loads(made["stats.json"])
    expected = json.loads(want["stats.json"])
    stats.pop("wall_seconds"), expected.pop("wall_seconds")
    assert stats == expected
    # No record lost or counted twice: every line read once, each skipped line listed once.
    assert stats["records"]["read"] == lines
    skipped = [json.loads(line) for line in made["skipped.jsonl"].decode().splitlines()]
    assert len(skipped) == stats["records"]["skipped"] == len({(s["file"], s["line"]) for s in skipped})


def test_a_killed_run_is_not_resumed_with_another_config(tmp_path: Path, word_tok: Path) -> None:
    """parts/plan.json binds the commits to the fingerprinted config: another --seed starts afresh."""
    src, _ = corpus(tmp_path / "records")
    args = [str(src), "--tokenizer", str(word_tok), "--seq-len", "16", "--shard-tokens", "64",
            "--batch-size", "8", "--disable-check", "copy", "--disable-check", "repetition",
            "--min-thinking-words", "10", "--no-progress", "--shuffle-buffer", "25", "--workers", "0"]  # fmt: skip
    whole, out = tmp_path / "whole", tmp_path / "out"
    assert pack(tmp_path, [*args, "--seed", "1"], whole, tmp_path / "n0", 0) == 0
    assert pack(tmp_path, args, out, tmp_path / "n1", 3) == -9
    assert pack(tmp_path, [*args, "--seed", "1"], out, tmp_path / "n2", 0) == 0
    assert (tmp_path / "n2.shards").read_text() == (tmp_path / "n0.shards").read_text()  # every shard again
    made, want = files(out), files(whole)
    assert sorted(made) == sorted(want)
    assert all(made[n] == want[n] for n in want if n not in ("manifest.json", "stats.json"))
