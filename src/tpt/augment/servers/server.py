"""One supervised server subprocess: start it, wait until it is healthy, restart it when it dies or hangs.

The server is started in its own process group with a parent-death signal, so it never outlives the
process (or Ray worker) that started it, even after a `kill -9`. Its output goes to a log file whose
tail is quoted in every error. A watcher thread polls the process and `GET /v1/models`; while a restart
is under way `healthy` is cleared, so the client side (supervised.py) holds new requests back.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from tpt.augment.servers.engines import ServeSpec, check_installed, server_command
from tpt.core.errors import BackendError

STOP_GRACE_S = 20.0  # SIGTERM, then this long, then SIGKILL


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the OS picks it; reused for every restart of the server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """preexec_fn: new process group (so stop() reaches the server's own children too), and SIGTERM
    when the thread that started it dies (Linux prctl PR_SET_PDEATHSIG = 1)."""
    os.setpgrp()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class ManagedServer:
    """`with ManagedServer(spec) as server: ... server.base_url ...`; thread-safe properties."""

    def __init__(self, spec: ServeSpec, *, port: int | None = None, log_dir: Path | None = None) -> None:
        self.spec = spec
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._own_log_dir = log_dir is None  # a temp dir: removed after a clean run, kept after trouble
        log_dir = Path(log_dir or tempfile.mkdtemp(prefix="tpt-serve-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / f"server-{self.port}.log"
        self.restarts = 0
        """Restarts so far (not counting the first start)."""
        self.generation = 0
        """Incremented at each (re)start: a request sent under another generation met a dead server."""
        self.failed: str | None = None
        """Set, with the reason, once the server is dead for good."""
        self._healthy = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._watcher: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------------

    def start(self) -> ManagedServer:
        """Start and wait until healthy (raises BackendError with the log tail if it never is)."""
        check_installed(self.spec)
        # Every spawn happens in the watcher thread: the parent-death signal fires when the *thread*
        # that forked the server exits, and the watcher lives exactly as long as the server should.
        started = threading.Event()
        errors: list[BackendError] = []

        def run() -> None:
            try:
                self._spawn_and_wait()
            except BackendError as exc:
                errors.append(exc)
                return
            finally:
                started.set()
            self._watch()

        self._watcher = threading.Thread(target=run, name=f"tpt-serve-{self.port}", daemon=True)
        self._watcher.start()
        started.wait()
        if errors:
            self.failed = str(errors[0])  # also keeps the log, which the message points to
            self.stop()
            raise errors[0]
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM to its process group, SIGKILL after a grace period); idempotent."""
        self._stopping.set()
        self._healthy.clear()
        self._kill()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout=STOP_GRACE_S + 5)
        if self._own_log_dir and self.restarts == 0 and self.failed is None and self._watcher is not None:
            shutil.rmtree(self.log_path.parent, ignore_errors=True)

    def __enter__(self) -> ManagedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def healthy(self) -> bool:
        return self._healthy.is_set()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def responding(self) -> bool:
        """Checked now, not at the watcher's next poll: the process is alive and answers GET /v1/models."""
        with self._lock:  # the watcher swaps _proc under this lock: a dead _proc is the current one
            proc = self._proc
            if proc is not None and proc.poll() is not None:
                # Dead: stop new requests right away (requests to a dead port fail in microseconds, far
                # quicker than the watcher's poll); the watcher restarts it and sets healthy again.
                self._healthy.clear()
                return False
        return self.healthy and proc is not None and self._probe(timeout_s=5.0)

    def wait_healthy(self, timeout_s: float) -> bool:
        """Block until the server is healthy (True), dead for good or timed out (False)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.failed is None and not self._stopping.is_set():
            if self._healthy.wait(timeout=0.2):
                return True
        return False

    # ---- internals -------------------------------------------------------------------------------

    def _spawn_and_wait(self) -> None:
        argv = server_command(self.spec, self.port)
        env = {**os.environ, **self.spec.env}
        with self._lock:
            log = open(self.log_path, "ab")  # noqa: SIM115 - the child holds it; closed below
            log.write(f"\n=== tpt: starting (generation {self.generation + 1}): {' '.join(argv)}\n".encode())
            log.flush()
            try:
                self._proc = subprocess.Popen(
                    argv,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    env=env,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise BackendError(f"cannot start the {self.spec.engine} server ({argv[0]}): {exc}") from None
            finally:
                log.close()
        deadline = time.monotonic() + self.spec.startup_timeout_s
        while time.monotonic() < deadline:
            if self._stopping.is_set():
                return
            if self._proc.poll() is not None:
                raise BackendError(
                    f"the {self.spec.engine} server exited with status {self._proc.returncode} "
                    f"while starting; its log ({self.log_path}) ends with:\n{self.log_tail()}"
                )
            if self._probe(timeout_s=2.0):
                self.generation += 1
                self._healthy.set()
                return
            time.sleep(0.25)
        self._kill()
        raise BackendError(
            f"the {self.spec.engine} server did not answer GET /v1/models within "
            f"{self.spec.startup_timeout_s:.0f} s; its log ({self.log_path}) ends with:\n"
            f"{self.log_tail()}"
        )

    def _probe(self, timeout_s: float) -> bool:
        try:
            with urllib.request.urlopen(self.base_url + "/models", timeout=timeout_s) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False

    def _watch(self) -> None:
        """Restart the server when it exits or stops answering; give up after max_restarts."""
        failed_probes = 0
        last_probe = time.monotonic()
        while not self._stopping.wait(timeout=0.2):
            proc = self._proc
            dead = proc is None or proc.poll() is not None
            hang_probes = self.spec.probes_for_hang
            if not dead and hang_probes and time.monotonic() - last_probe >= self.spec.health_interval_s:
                last_probe = time.monotonic()
                failed_probes = 0 if self._probe(timeout_s=5.0) else failed_probes + 1
                dead = failed_probes >= hang_probes
            if not dead:
                continue
            self._healthy.clear()
            why = (
                f"exited with status {proc.returncode}"
                if proc is not None and proc.poll() is not None
                else f"stopped answering ({failed_probes} failed health probes)"
            )
            self._kill()
            if self._stopping.is_set():
                return
            if self.restarts >= self.spec.max_restarts:
                self.failed = (
                    f"the {self.spec.engine} server {why} after {self.restarts} restarts "
                    f"(--serve-max-restarts); its log ({self.log_path}) ends with:\n{self.log_tail()}"
                )
                return
            self.restarts += 1
            with open(self.log_path, "ab") as log:
                log.write(f"\n=== tpt: the server {why}; restart {self.restarts}\n".encode())
            try:
                self._spawn_and_wait()
            except BackendError as exc:
                self.failed = str(exc)
                return
            failed_probes = 0
            last_probe = time.monotonic()

    def _kill(self) -> None:
        with self._lock:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])
