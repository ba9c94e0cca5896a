"""The id registry behind --duplicate-ids: exact first occurrences past several merged runs."""

import random

from tpt.core.duplicate_ids import DuplicateCheck, IdRegistry, id_hash


def test_first_occurrences_survive_flushes_and_merges():
    reg = IdRegistry()
    n = 20_000  # four flushes of 4096 and merges: a few sorted runs
    for i in range(n):
        assert reg.add(id_hash(f"doc-{i}"), i) == i
    assert len(reg) == n and 1 <= len(reg._runs) <= 4
    rng = random.Random(0)
    for i in rng.sample(range(n), 2000):
        assert reg.first(id_hash(f"doc-{i}")) == i
        assert reg.add(id_hash(f"doc-{i}"), n + i) == i  # a repeat keeps the first index
    assert reg.first(id_hash("never seen")) is None


def test_ids_compare_by_json_value():
    assert id_hash(1) != id_hash("1") and id_hash([1, 2]) == id_hash([1, 2])
    check = DuplicateCheck("keep-first")
    assert [check.check(x, i) for i, x in enumerate(["a", None, "a", None, 1, "1"])] == [
        None,
        None,
        "the id of input item 0 again; dropped (--duplicate-ids keep-first)",
        None,
        None,
        None,
    ]
    assert check.count == 1 and check.drops
