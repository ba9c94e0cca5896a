"""The stages on object storage, against a real S3-compatible server on 127.0.0.1 (moto) and the OpenAI stub.

- augment from s3:// to s3://, `kill -9` during the uploads of a commit, a resume on another machine's
  (empty) staging directory, then a run to the end: every document exactly once;
- validate from s3:// to s3://, pack from s3:// (the records, and the raw arm's corpus via the manifest);
- the missing-extra and wrong-credentials errors as one line; no credential in any output or log.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tpt.formats.reading import RecordLine, read_records, resolve_record_files
from tpt.testing.openai_stub import StubProcess, augment_argv
from tpt.testing.s3_server import S3ServerProcess

N_DOCS = 36


def docs(start: int, n: int) -> bytes:
    return b"".join(
        json.dumps(
            {"id": f"d{i}", "text": f"document number {i} " + "word " * (i % 5), "lang": "en"}
        ).encode()
        + b"\n"
        for i in range(start, start + n)
    )


def put_corpus(s3) -> None:
    s3.put("corpus/a.jsonl", docs(0, N_DOCS // 2))
    s3.put("corpus/b.jsonl.gz", gzip.compress(docs(N_DOCS // 2, N_DOCS - N_DOCS // 2)))


def tpt(*args: str) -> list[str]:
    return [sys.executable, "-m", "tpt", *args]


def augment(src: str, out: str, base_url: str, *extra: str) -> list[str]:
    options = ["--concurrency", "4", "--shard-size", "4", "--no-progress", *extra]
    return tpt(*augment_argv(src, out, base_url, *options))


def no_secret(s3, *texts: str, dirs: tuple[Path, ...] = ()) -> None:
    """Neither the secret key nor the key id is in any object of the bucket, any file, or any log."""
    secrets = [s3.credentials["AWS_SECRET_ACCESS_KEY"].encode(), s3.credentials["AWS_ACCESS_KEY_ID"].encode()]
    blobs = [s3.get(k) for k in s3.keys()] + [t.encode() for t in texts]
    blobs += [p.read_bytes() for d in dirs for p in d.rglob("*") if p.is_file()]
    assert blobs and not any(s in b for s in secrets for b in blobs)


@pytest.fixture(scope="module")
def slow_put_s3() -> str:
    """A server whose PUTs take 100 ms, so that a kill lands inside a shard's commit (3 uploads)."""
    with S3ServerProcess(["--put-latency-ms", "100"]) as server:
        yield server.endpoint


@pytest.mark.slow
def test_augment_s3_to_s3_killed_mid_commit_resumes_exactly_once_then_pack_and_validate(
    make_s3, slow_put_s3, tmp_path
):
    s3 = make_s3(slow_put_s3)
    put_corpus(s3)
    src, out = s3.url("corpus/"), s3.url("aug")
    logs: list[str] = []
    kills_mid_commit = 0
    with StubProcess(["--latency-ms", "20", "--words", "30"], max_seconds=120) as stub:
        committed_before = 0
        for staging in ("node-a", "node-b"):
            env = {**s3.env, "TPT_STAGING_DIR": str(tmp_path / staging)}
            proc = subprocess.Popen(augment(src, out, stub.base_url), env=env, stderr=subprocess.PIPE, text=True,
                                    stdout=subprocess.DEVNULL)  # fmt: skip
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                keys = s3.keys("aug/shards")
                records = [k for k in keys if k.endswith(".jsonl") and not k.endswith(".failures.jsonl")]
                stats = [k for k in keys if k.endswith(".stats.json")]
                if len(records) > committed_before and len(stats) > len(records):
                    kills_mid_commit += 1  # a shard's stats are up, its records not yet: inside a commit
                    committed_before = len(records)
                    break
                time.sleep(0.01)
            if staging == "node-a":  # the first run is killed inside a commit; the second may finish first
                assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            logs.append(proc.stderr.read())
        # the third run, on node-b's staging directory, goes to the end
        env = {**s3.env, "TPT_STAGING_DIR": str(tmp_path / "node-b")}
        done = subprocess.run(augment(src, out, stub.base_url), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    logs += [done.stderr, done.stdout]
    assert kills_mid_commit >= 1
    assert "took over the lease" in logs[1]  # the killed run's lease: its pid is gone on this host
    shards = resolve_record_files([out])
    assert all(str(p).startswith(out + "/shards/part-") for p in shards)
    lines = list(read_records(shards))
    assert all(isinstance(x, RecordLine) for x in lines)
    assert sorted(x.id for x in lines) == sorted(f"d{i}" for i in range(N_DOCS))  # exactly once
    assert {json.loads(x.raw)["input"]["file"] for x in lines} == {
        s3.url("corpus/a.jsonl"),
        s3.url("corpus/b.jsonl.gz"),
    }
    summary = json.loads(s3.get("aug/summary.json"))
    assert summary["complete"] and summary["records"] == N_DOCS
    assert s3.get("aug/failures.jsonl") == b""
    assert "aug/.tpt-lock" not in s3.keys("aug")
    assert not list((tmp_path / "node-b").rglob("*.partial"))

    # validate from s3:// to s3://, then pack the validated records and the raw arm from s3://
    val = subprocess.run(
        tpt("validate", out, "--output", s3.url("val")), env=s3.env, capture_output=True, text=True
    )
    assert val.returncode == 0, val.stderr
    assert s3.get("val/kept.jsonl").count(b"\n") + s3.get("val/rejected.jsonl").count(b"\n") == N_DOCS
    tok = write_tokenizer(tmp_path / "tok.json")
    for inputs, mode in ((s3.url("val"), "tpt"), (out, "raw")):  # the raw arm reads the corpus on S3
        pack = subprocess.run(tpt("pack", inputs, "--output", str(tmp_path / f"pack-{mode}"), "--tokenizer", str(tok),
                                  "--seq-len", "64", "--mode", mode, "--no-progress"),
                              env=s3.env, capture_output=True, text=True)  # fmt: skip
        assert pack.returncode == 0, pack.stderr
        stats = json.loads((tmp_path / f"pack-{mode}" / "stats.json").read_text())
        expected = N_DOCS if inputs == out else s3.get("val/kept.jsonl").count(b"\n")
        assert stats["documents"] == expected, stats
        logs += [pack.stderr, pack.stdout]
    no_secret(s3, *logs, val.stderr, val.stdout, dirs=(tmp_path,))


def write_tokenizer(path: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["<|endoftext|>", "[UNK]", "<think>", "</think>", "document", "number", "word"]
    tok = Tokenizer(models.WordLevel(vocab={w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens(["<|endoftext|>"])
    tok.save(str(path))
    return path


def test_pack_refuses_an_object_store_output_in_one_line(s3, tmp_path):
    run = subprocess.run(tpt("pack", str(tmp_path), "--output", s3.url("pack"), "--tokenizer", "x", "--seq-len", "8"),
                         env=s3.env, capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert run.stderr.strip().count("\n") == 0 and "memory-mapped" in run.stderr
    assert not (tmp_path / "s3:").exists()  # the URL never became a local directory


def test_a_url_that_went_through_pathlib_is_refused_not_made_a_local_directory(tmp_path, monkeypatch):
    from tpt.core.errors import ConfigError
    from tpt.storage.outputlock import lock_output_dir

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="lost its '//'"):
        lock_output_dir(Path("s3://bucket/out"), stage="pack")
    assert not (tmp_path / "s3:").exists()
    with lock_output_dir(tmp_path / "s3-like:name", stage="pack"):  # a plain name with a colon is fine
        pass


@pytest.mark.parametrize(
    ("url", "module", "extra"),
    [
        ("s3://bkt/corpus/", "s3fs", "s3"),
        ("gs://bkt/corpus/", "gcsfs", "gcs"),
        ("hf://datasets/x/y", "huggingface_hub", "hf"),
    ],
)
def test_a_missing_filesystem_library_names_its_extra(tmp_path, url, module, extra):
    code = (
        f"import sys; sys.modules[{module!r}] = None; from tpt.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    argv = augment_argv(url, tmp_path / "out", "http://127.0.0.1:9", "--no-progress")
    run = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"needs the package '{module}', which is not installed: pip install 'tpt[{extra}]'" in lines[0]


@pytest.fixture(scope="module")
def strict_s3() -> str:
    """A server that authenticates every request: the tests' keys are unknown to it."""
    with S3ServerProcess(env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as server:
        yield server.endpoint


@pytest.mark.parametrize("side", ["input", "output"])
def test_wrong_credentials_are_one_line_without_the_secret(strict_s3, s3, tmp_path, side):
    (tmp_path / "c.jsonl").write_bytes(docs(0, 2))
    src, out = (("s3://bkt/corpus/", str(tmp_path / "out")) if side == "input"
                else (str(tmp_path / "c.jsonl"), "s3://bkt/aug"))  # fmt: skip
    env = {**s3.env, "AWS_ENDPOINT_URL": strict_s3}
    run = subprocess.run(tpt(*augment_argv(src, out, "http://127.0.0.1:9", "--no-progress")), env=env,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert "access denied" in lines[0] and "wrong credentials" in lines[0] and "AWS_ACCESS_KEY_ID" in lines[0]
    assert s3.credentials["AWS_SECRET_ACCESS_KEY"] not in run.stderr + run.stdout
