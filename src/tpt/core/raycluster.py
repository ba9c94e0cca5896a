"""Joining a Ray cluster, or starting a local one that lives on 127.0.0.1 only (every stage's --executor ray).

On Linux, `ray.init()` and `ray start` give a node the machine's outbound network address (the one a UDP
socket towards a public address would use), and an explicit `_node_ip_address="127.0.0.1"` is turned back
into that address (`ray._private.services.resolve_ip_for_localhost`). A cluster that tpt starts for one job
on one machine has no reason to be reachable from the network, so it is pinned to the loopback address the
way Ray itself does on macOS and Windows: with `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0` in the environment of
the driver and of every process Ray spawns, `get_node_ip_address()` is 127.0.0.1, the GCS, raylet, object
manager and workers bind there, and nothing listens on the network address. The same setting makes
`ray start --address` refuse to add a second node, which is right for a one-machine cluster; a
multi-node test on one machine uses `ray.cluster_utils.Cluster` under the same setting (every raylet on
127.0.0.1).

A cluster given by `--address` is the user's: its addresses are whatever its `ray start` was told.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from tpt.core.errors import BackendError, ConfigError

LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
"""The environment that pins a local Ray cluster to 127.0.0.1 (read by Ray at import and by its children)."""


def pin_to_loopback() -> None:
    """Make every Ray cluster started from this process bind to 127.0.0.1.

    Sets the environment (inherited by the GCS, raylets and workers Ray spawns); when `ray` is already
    imported, its import-time copy of the flag is updated too, since Ray reads it once at import.
    """
    os.environ.update(LOOPBACK_ENV)
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False


def init_local(ray: Any, **kwargs: Any) -> None:
    """`ray.init(**kwargs)` for a new single-machine cluster on 127.0.0.1; fails if a node is elsewhere.

    `address="local"`: without it Ray joins a cluster it finds already running on the machine (someone
    else's, or another job's) instead of starting this job's own."""
    pin_to_loopback()
    ray.init(**{"address": "local", **kwargs})
    stray = [a for a in node_addresses(ray) if not is_loopback(a)]
    if stray:
        ray.shutdown()
        raise BackendError(
            f"the local Ray cluster came up on {', '.join(stray)}, not on 127.0.0.1; "
            "start one with `ray start --head --node-ip-address 127.0.0.1` and pass --address"
        )


def node_addresses(ray: Any) -> list[str]:
    """The address every live node of the connected cluster reports."""
    return [n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")]


def is_loopback(address: str) -> bool:
    """127.0.0.0/8, ::1, an IPv4-mapped 127.x (::ffff:127.0.0.1), or the name localhost."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address == "localhost"
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


RAY_INIT = {"include_dashboard": False, "logging_level": "warning", "log_to_driver": True}
"""How every stage starts or joins a cluster: no dashboard, Ray's own log at warnings, workers' output shown."""


def connect(ray: Any, address: str | None, *, stage: str) -> bool:
    """Join the cluster at `address` (else $RAY_ADDRESS), or start a one-machine cluster pinned to
    127.0.0.1; nothing when this process is connected already. True when this call connected (so the
    caller disconnects at the end). A cluster that cannot be joined is a one-line ConfigError naming the
    stage."""
    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address is None:  # a cluster of our own, on this machine: loopback only
        init_local(ray, **RAY_INIT)
        return True
    try:
        ray.init(address=address, **RAY_INIT)
    except (ConnectionError, ValueError) as exc:
        raise ConfigError(
            f"tpt {stage}: cannot join the Ray cluster at {address!r} ({exc}); start it with "
            "`ray start --head` or pass its address to --address"
        ) from None
    return True
