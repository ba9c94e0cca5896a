"""A real S3-compatible server for the storage tests: moto's server mode (tpt.testing.s3_server), a
subprocess listening on 127.0.0.1, started once per session; each test gets its own bucket."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

ENV = {
    "AWS_ACCESS_KEY_ID": "testing-key-id",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-not-for-logs",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_counter = itertools.count()


@dataclass
class S3:
    endpoint: str
    bucket: str
    env: dict[str, str]
    """The environment a tpt subprocess needs to reach this server (os.environ plus these)."""

    def url(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}".rstrip("/")

    @property
    def fs(self):
        import s3fs

        return s3fs.S3FileSystem(
            key=ENV["AWS_ACCESS_KEY_ID"], secret=ENV["AWS_SECRET_ACCESS_KEY"], endpoint_url=self.endpoint,
            use_listings_cache=False, skip_instance_cache=True,
        )  # fmt: skip

    def put(self, key: str, data: bytes) -> None:
        self.fs.pipe_file(f"{self.bucket}/{key}", data)

    def get(self, key: str) -> bytes:
        return self.fs.cat_file(f"{self.bucket}/{key}")

    def keys(self, prefix: str = "") -> list[str]:
        base = f"{self.bucket}/{prefix}".rstrip("/")
        return sorted(k[len(self.bucket) + 1 :] for k in self.fs.find(base))


def start_server(
    extra_env: dict[str, str] | None = None, latency_ms: float = 0
) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "tpt.testing.s3_server", "--port", "0"]
    if latency_ms:
        cmd += ["--get-latency-ms", str(latency_ms)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(extra_env or {})},
    )
    deadline = time.monotonic() + 60
    line = proc.stdout.readline()
    if not line.startswith("listening on ") or time.monotonic() > deadline:
        proc.kill()
        raise RuntimeError(f"the local S3 server did not start: {line!r}")
    return proc, line.split()[-1]


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    proc, endpoint = start_server()
    yield endpoint
    proc.kill()
    proc.wait()
    proc.stdout.close()


@pytest.fixture
def s3(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> S3:
    """A fresh bucket on the session's server; this process's environment points the clients at it."""
    env = {**ENV, "AWS_ENDPOINT_URL": s3_server}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    bucket = f"tpt-test-{os.getpid()}-{next(_counter)}"
    box = S3(endpoint=s3_server, bucket=bucket, env={**os.environ, **env})
    box.fs.mkdir(bucket)
    return box
