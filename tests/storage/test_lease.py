"""The output lock on object storage: a lease object with conditional puts, against a real S3 server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tpt.storage import as_path
from tpt.storage.lease import LeaseLost, check_commit, upload_held
from tpt.storage.outputlock import OutputBusyError, lock_output_dir

HOLD = """
import sys, time
from tpt.core.errors import TptError
from tpt.storage.outputlock import lock_output_dir
try:
    lock = lock_output_dir(sys.argv[1], stage="augment")
except TptError as exc:
    print(exc, file=sys.stderr); sys.exit(2)
print("held", flush=True)
if sys.argv[2] == "die":
    import os, signal; os.kill(os.getpid(), signal.SIGKILL)
time.sleep(float(sys.argv[2]))
lock.release()
"""


def _hold(s3, url: str, then: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", HOLD, url, then],
        env=s3.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_one_holder_a_second_run_fails_naming_it_and_release_deletes(s3):
    url = s3.url("out")
    with lock_output_dir(url, stage="augment") as lease:
        holder = json.loads(s3.get("out/.tpt-lock"))
        assert holder["stage"] == "augment" and holder["pid"] == os.getpid()
        assert lock_output_dir(url, stage="augment") is lease  # re-entrant in one process
        lease.release()
        second = _hold(s3, url, "0")
        _, err = second.communicate(timeout=60)
        assert second.returncode == 2, err
        assert err.count("\n") == 1 and f"pid {os.getpid()}" in err and "is in use by `tpt augment`" in err
    assert "out/.tpt-lock" not in s3.keys("out")


def test_a_killed_holder_on_this_host_is_taken_over_at_once(s3, capsys):
    url = s3.url("out")
    dead = _hold(s3, url, "die")
    assert dead.stdout.readline() == "held\n"
    dead.wait(timeout=30)
    with lock_output_dir(url, stage="augment") as lease:
        assert lease.took_over is not None and lease.took_over["pid"] == dead.pid
    assert "took over the lease" in capsys.readouterr().err


def test_a_lease_of_another_host_holds_until_it_expires(s3):
    url = s3.url("out")
    live = {"stage": "augment", "pid": 1, "host": "node-7", "started_at": "x", "token": "t", "ttl_s": 60}
    s3.put("out/.tpt-lock", json.dumps({**live, "renewed_at": time.time()}).encode())
    with pytest.raises(OutputBusyError, match=r"pid 1 on host node-7.*expires at"):
        lock_output_dir(url, stage="augment")
    s3.put("out/.tpt-lock", json.dumps({**live, "renewed_at": time.time() - 61}).encode())
    with lock_output_dir(url, stage="augment") as lease:
        assert lease.took_over["host"] == "node-7"


def test_two_runs_starting_at_once_one_wins(s3):
    url = s3.url("race")
    runs = [_hold(s3, url, "3") for _ in range(2)]
    results = [r.communicate(timeout=60) for r in runs]
    codes = sorted(r.returncode for r in runs)
    assert codes == [0, 2], results


def test_a_lost_lease_stops_the_next_commit(s3):
    url = s3.url("out")
    with lock_output_dir(url, stage="augment") as lease:
        check_commit(url + "/shards/part-00000000.jsonl")  # ours: fine
        other = {
            "stage": "augment",
            "pid": 2,
            "host": "node-8",
            "token": "other",
            "renewed_at": time.time(),
            "ttl_s": 60,
        }
        s3.put("out/.tpt-lock", json.dumps(other).encode())  # another run took it over
        lease.renew()
        with pytest.raises(LeaseLost, match="lost its lease"):
            check_commit(url + "/shards/part-00000000.jsonl")
    assert json.loads(s3.get("out/.tpt-lock"))["token"] == "other"  # a lost lease is not deleted


def test_upload_held_checks_the_lease_then_uploads_and_plain_upload_is_transport(s3, tmp_path):
    """The lease is out of remote.upload: lease.upload_held is the upload of a run that holds the output."""
    from tpt.storage.remote import upload

    url = s3.url("out")
    local = tmp_path / "failures.jsonl"
    local.write_bytes(b"{}\n")
    with lock_output_dir(url, stage="augment") as lease:
        upload_held(local, as_path(url + "/failures.jsonl"))
        assert s3.get("out/failures.jsonl") == b"{}\n"
        lease.lost = "another run took it over"
        with pytest.raises(LeaseLost, match="lost its lease"):
            upload_held(local, as_path(url + "/kept.jsonl"))
        assert "out/kept.jsonl" not in s3.keys("out")
        upload(local, as_path(url + "/plain.jsonl"))  # transport only: no lock consulted
        assert s3.get("out/plain.jsonl") == b"{}\n"
