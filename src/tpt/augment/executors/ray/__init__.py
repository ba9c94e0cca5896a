"""`tpt augment --executor ray`: the same augmentation, its units spread over the workers of a Ray cluster.

One of augment's executors (the contract and the local one are `tpt.augment.executors`): augment names
it by import string only when `--executor ray` is chosen, and this package imports augment, never the
reverse (tests/core/test_import_graph.py). `executor` is the driver side, `pool` and `worker` the
actors, `units` the split of the pending documents, `options` its flags, `loopback` the one-machine
cluster for tests and laptops.
"""
