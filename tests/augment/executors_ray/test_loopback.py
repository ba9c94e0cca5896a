"""Every cluster and server tpt or its tests start locally is on 127.0.0.1: nodes report it, and no process
of theirs listens on any other address (on these machines the network address is not loopback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import psutil
import pytest

from tpt.core.raycluster import is_loopback, node_addresses


def _ray_pids() -> set[int]:
    """This process's Ray children (GCS, raylet, agents, workers), however deep."""
    return {p.pid for p in psutil.Process().children(recursive=True)}


def _non_loopback_listeners(pids: set[int]) -> list[str]:
    out = []
    for c in psutil.net_connections(kind="inet"):
        if c.pid in pids and c.status in (psutil.CONN_LISTEN, psutil.CONN_NONE) and c.laddr:
            if not is_loopback(c.laddr.ip):
                out.append(f"{c.laddr.ip}:{c.laddr.port} (pid {c.pid})")
    return out


def test_every_node_of_the_test_cluster_is_on_loopback(ray_cluster):
    ray = ray_cluster
    addresses = node_addresses(ray)
    assert addresses and all(is_loopback(a) for a in addresses), addresses

    @ray.remote
    def where() -> str:
        import ray as r

        return r.util.get_node_ip_address()

    assert is_loopback(ray.get(where.remote()))
    pids = _ray_pids()
    assert pids, "the cluster's processes should be children of this process"
    assert _non_loopback_listeners(pids) == []


def test_the_cluster_tpt_starts_itself_is_on_loopback(tmp_path):
    """`tpt augment --executor ray` without --address starts its own cluster: all of it on 127.0.0.1, and
    its own even while another cluster runs on the machine (one `ray start` would make: plain `ray.init()`
    joins that one)."""
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from tpt.core.raycluster import pin_to_loopback

    pin_to_loopback()
    other = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        _probe_own_cluster(tmp_path)
    finally:
        other.shutdown()


def _probe_own_cluster(tmp_path) -> None:
    probe = f"""
import json, sys
sys.path.insert(0, {os.path.dirname(__file__)!r})
import ray
from tpt.augment.executors.ray.options import RayOptions
from tpt.augment.executors.ray.executor import _connect
from tpt.core.raycluster import node_addresses
from test_loopback import _non_loopback_listeners, _ray_pids
assert _connect(ray, RayOptions())
print(json.dumps({{"nodes": node_addresses(ray), "stray": _non_loopback_listeners(_ray_pids()),
                  "own": len(_ray_pids())}}))
ray.shutdown()
"""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    res = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["nodes"] and all(is_loopback(a) for a in got["nodes"]), got
    assert got["stray"] == [], got
    assert got["own"] > 0, "it joined the cluster already running instead of starting its own"


def test_the_stub_server_listens_on_loopback_only():
    from tpt.testing.openai_stub import StubConfig, StubServer

    with StubServer(StubConfig(latency_ms=1, words=2)) as server:
        mine = [
            c
            for c in psutil.net_connections(kind="inet")
            if c.pid == os.getpid() and c.status == psutil.CONN_LISTEN and c.laddr.port == server.port
        ]
        assert mine and all(is_loopback(c.laddr.ip) for c in mine)
