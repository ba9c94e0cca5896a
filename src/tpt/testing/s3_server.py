"""A local S3-compatible server for tests and benchmarks: moto's server mode on 127.0.0.1.

    python -m tpt.testing.s3_server [--port 0] [--get-latency-ms 20]

prints `listening on http://127.0.0.1:PORT` once it accepts requests, then serves until killed. Point
the S3 clients at it with `AWS_ENDPOINT_URL=http://127.0.0.1:PORT` (any access key and secret: moto
checks none, unless started with INITIAL_NO_AUTH_ACTION_COUNT=0, when every key is unknown to it, which
is how the tests get a wrong-credentials answer). `--get-latency-ms` delays every GET by that much, so a
benchmark sees the request latency of a remote store. It needs moto (`pip install 'moto[server]'`,
in tpt's dev extra) and listens on the loopback address only.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any


class Latency:
    """WSGI middleware: sleep before every GET (object reads and listings)."""

    def __init__(self, app: Any, seconds: float) -> None:
        self.app, self.seconds = app, seconds
        self.gets = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("REQUEST_METHOD") == "GET":
            self.gets += 1
            time.sleep(self.seconds)
        return self.app(environ, start_response)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tpt.testing.s3_server", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--get-latency-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    app: Any = DomainDispatcherApplication(create_backend_app)
    if args.get_latency_ms > 0:
        app = Latency(app, args.get_latency_ms / 1000)
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=MotoRequestHandler)
    print(f"listening on http://127.0.0.1:{server.server_port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
