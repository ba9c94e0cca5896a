"""A real S3-compatible server for the storage tests: moto's server mode (tpt.testing.s3_server), a
subprocess listening on 127.0.0.1, started once per session; each test gets its own bucket."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tpt.testing.s3_server import S3ServerProcess

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
    credentials = ENV

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


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    with S3ServerProcess() as server:
        yield server.endpoint


@pytest.fixture
def make_s3(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], S3]:
    """A fresh bucket on the server at an endpoint; this process's environment points the clients at it."""

    def make(endpoint: str) -> S3:
        env = {**ENV, "AWS_ENDPOINT_URL": endpoint}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        box = S3(
            endpoint=endpoint, bucket=f"tpt-test-{os.getpid()}-{next(_counter)}", env={**os.environ, **env}
        )
        box.fs.mkdir(box.bucket)
        return box

    return make


@pytest.fixture
def s3(s3_server: str, make_s3: Callable[[str], S3]) -> S3:
    return make_s3(s3_server)
