"""`tpt pack --executor ray` losing a whole node mid-run (the augment tests' two loopback nodes, the second
one's raylet and workers SIGKILLed once the pack has made its third commit): Ray runs the lost tasks (and
the sequencer, if it was there) again on the head node, and the output is byte for byte a local run's,
committed shards untouched."""

from __future__ import annotations

import threading

import pytest

from tests.augment.executors_ray.test_node_loss import two_nodes  # noqa: F401 (the augment tests' nodes)
from tests.pack.test_ray import MIX, OPTIONS, big_corpus, kill_after_commit, not_redone, same_output
from tpt.cli import main


@pytest.mark.slow
def test_losing_a_node_mid_run_changes_nothing(two_nodes, tmp_path, word_tok):  # noqa: F811
    _, cluster, second = two_nodes
    src = big_corpus(tmp_path / "records")
    args = [str(src), "--tokenizer", str(word_tok), *OPTIONS, *MIX]
    assert main(["pack", *args, "--output", str(tmp_path / "local"), "--workers", "0"]) == 0
    out = tmp_path / "ray"
    stop = threading.Event()

    def lose_node() -> list[str]:
        cluster.remove_node(second, allow_graceful=False)
        return ["the second node"]

    seen = kill_after_commit(out, 3, lose_node, stop)
    assert main(["pack", *args, "--output", str(out), "--executor", "ray", "--unit-bytes", "1000"]) == 0
    stop.set()
    assert len(cluster.list_all_nodes()) == 1
    not_redone(out, seen)
    same_output(out, tmp_path / "local")
