"""Units are whole shards of the documents still to do, in input order (no Ray needed)."""

from types import SimpleNamespace

from tpt.augment.executors.ray.units import group_units


def doc(index):
    return SimpleNamespace(item=SimpleNamespace(index=index))


def test_units_are_shards_and_skip_done_items():
    # shard size 4: items 0-3, 4-7, 8-11; item 2 and the whole of shard 1 already done
    units = list(group_units(iter([doc(i) for i in (0, 1, 3, 8, 10)]), 4))
    assert [(u.shard, sorted(u.indices)) for u in units] == [(0, [0, 1, 3]), (2, [8, 10])]


def test_no_documents_no_units():
    assert list(group_units(iter([]), 4)) == []
