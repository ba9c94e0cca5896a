"""Losing a whole Ray node mid-run: a cluster of two nodes on this machine, both on 127.0.0.1, the second
node's processes killed (raylet and workers, SIGKILL) while it holds units. The run completes with every
document exactly once and says what it lost and redid.

`ray start --address` cannot add a loopback-only second node here (Ray refuses multi-node clusters under
the loopback pin and, without it, rewrites 127.0.0.1 to the machine's address), so the two nodes are
`ray.cluster_utils.Cluster` raylets: each its own raylet with its own resources, as `ray start` makes.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tpt.augment.backends.base import SamplingParams
from tpt.augment.executors.ray.executor import run as run_ray
from tpt.augment.executors.ray.options import RayOptions
from tpt.augment.stage import AugmentConfig


def committed(out: Path) -> list[Path]:
    return [p for p in (out / "shards").glob("part-*.jsonl") if not p.name.endswith(".failures.jsonl")]


def listeners_off_loopback(pids: set[int]) -> list[str]:
    import psutil

    from tpt.core.raycluster import is_loopback

    return [
        f"{c.laddr.ip}:{c.laddr.port} (pid {c.pid})"
        for c in psutil.net_connections(kind="inet")
        if c.pid in pids and c.status == psutil.CONN_LISTEN and not is_loopback(c.laddr.ip)
    ]


@pytest.fixture
def two_nodes():
    ray = pytest.importorskip("ray")
    import psutil
    from ray.cluster_utils import Cluster

    from tpt.core.raycluster import is_loopback, node_addresses, pin_to_loopback

    pin_to_loopback()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        second = cluster.add_node(num_cpus=2)
        ray.init(address=cluster.address, logging_level="warning", log_to_driver=False)
        addresses = node_addresses(ray)
        assert len(addresses) == 2 and all(is_loopback(a) for a in addresses), addresses
        assert listeners_off_loopback({p.pid for p in psutil.Process().children(recursive=True)}) == []
        yield ray, cluster, second
    finally:
        ray.shutdown()
        cluster.shutdown()


@pytest.mark.slow
def test_losing_a_node_mid_run_redoes_its_units_and_says_so(
    two_nodes, tmp_path, write_corpus, read_outcomes, capsys
):
    from tpt.testing.openai_stub import StubConfig, StubServer

    ray, cluster, second = two_nodes
    src = write_corpus(tmp_path / "docs.jsonl", 48)
    out = tmp_path / "out"
    with StubServer(StubConfig(latency_ms=150, words=8)) as slow:
        options = {"model": "stub", "base_url": slow.base_url, "concurrency": 2, "max_retries": 1}
        cfg = AugmentConfig(
            inputs=[str(src)],
            output=out,
            backend="openai",
            backend_options=options,
            sampling=SamplingParams(max_tokens=64, seed=3),
            progress=False,
            shard_size=3,
        )
        result: dict = {}
        # 3 workers of 1 CPU on a head of 1 CPU and a second node of 2: two of them on the second node.
        runner = threading.Thread(target=lambda: result.update(run_ray(cfg, RayOptions(workers=3)).to_json()))
        runner.start()
        deadline = time.monotonic() + 120
        while len(committed(out)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert 2 <= len(committed(out)) < 12, "lose the node mid-run, while it holds units"
        cluster.remove_node(second, allow_graceful=False)  # SIGKILL of its raylet and workers
        runner.join(timeout=180)
        assert not runner.is_alive(), "the run must finish without the lost node"
    assert result["complete"] and result["records"] == 48 and result["failures"] == 0
    recs, fails = read_outcomes(out)
    assert [r["id"] for r in recs] == list(range(48)) and fails == []  # each document exactly once
    losses = json.loads((out / "summary.json").read_text())["ray"]
    assert losses == result["ray"] and losses["workers"] == 3 and losses["workers_lost"] == 2
    assert losses["lost_on_nodes"] == [second.node_id] and losses["workers_back"] == 0
    assert losses["units_redone"] >= 2 and losses["documents_redone"] >= 3 * 2
    said = capsys.readouterr().err
    assert "on 2 node(s)" in said and "augment: lost 2 of 3 Ray workers on node(s) " in said
    assert f"({losses['documents_redone']} documents) were redone by the other workers" in said
