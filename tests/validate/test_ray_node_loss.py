"""`tpt validate --executor ray` losing a whole node mid-run (the augment tests' two loopback nodes,
the second one's raylet and workers SIGKILLed): the output is still byte for byte a local run's."""

from __future__ import annotations

import threading

import pytest

from tests.augment.executors_ray.test_node_loss import two_nodes  # noqa: F401 (the augment tests' nodes)
from tests.validate.test_ray import corpus, kill_when_staged, same_output, validate


@pytest.mark.slow
def test_losing_a_node_mid_run_changes_nothing(two_nodes, tmp_path):  # noqa: F811
    _, cluster, second = two_nodes
    src = corpus(tmp_path / "records", files=6, per_file=1500)
    validate(src, tmp_path / "local", "local")
    stop = threading.Event()
    lost = kill_when_staged(
        tmp_path / "ray" / "parts", lambda pid: cluster.remove_node(second, allow_graceful=False), stop
    )
    validate(src, tmp_path / "ray", "ray", workers=3)
    stop.set()
    assert lost, "the node must be lost mid-run"
    same_output(tmp_path / "ray", tmp_path / "local")
