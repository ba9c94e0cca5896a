"""A local S3-compatible server for tests and benchmarks: moto's server mode on 127.0.0.1.

    python -m tpt.testing.s3_server [--port 0] [--get-latency-ms 20] [--put-latency-ms 0]

prints `listening on http://127.0.0.1:PORT` once it accepts requests, then serves until killed. Point
the S3 clients at it with `AWS_ENDPOINT_URL=http://127.0.0.1:PORT` (any access key and secret: moto
checks none, unless started with INITIAL_NO_AUTH_ACTION_COUNT=0, when every key is unknown to it, which
is how the tests get a wrong-credentials answer). `--get-latency-ms` delays every GET by that much, so a
benchmark sees the request latency of a remote store; `--put-latency-ms` delays every PUT (uploads), so
that a test's `kill -9` lands inside an upload. It needs moto (`pip install 'moto[server]'`,
in tpt's dev extra) and listens on the loopback address only.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import time
from typing import Any


class Latency:
    """WSGI middleware: sleep before every request of the given methods (GET: reads and listings)."""

    def __init__(self, app: Any, seconds: dict[str, float]) -> None:
        self.app, self.seconds = app, seconds

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if delay := self.seconds.get(environ.get("REQUEST_METHOD", "")):
            time.sleep(delay)
        return self.app(environ, start_response)


class S3ServerProcess:
    """The server as a subprocess: `with S3ServerProcess(["--put-latency-ms", "150"]) as server:
    server.endpoint`; `env` adds to the server's environment (INITIAL_NO_AUTH_ACTION_COUNT=0)."""

    def __init__(self, args: list[str] | tuple[str, ...] = (), *, env: dict[str, str] | None = None) -> None:
        self.args, self.env = list(args), env or {}
        self.proc: subprocess.Popen[str] | None = None
        self.endpoint = ""

    def __enter__(self) -> S3ServerProcess:
        cmd = [sys.executable, "-m", "tpt.testing.s3_server", "--port", "0", *self.args]
        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, **self.env}
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            self.__exit__()
            raise RuntimeError(f"the local S3 server did not start (said {line!r})")
        self.endpoint = line.split()[-1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            if self.proc.stdout is not None:
                self.proc.stdout.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tpt.testing.s3_server", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--get-latency-ms", type=float, default=0.0)
    parser.add_argument("--put-latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app: Any = DomainDispatcherApplication(create_backend_app)
    if args.get_latency_ms > 0 or args.put_latency_ms > 0:
        app = Latency(app, {"GET": args.get_latency_ms / 1000, "PUT": args.put_latency_ms / 1000})
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
