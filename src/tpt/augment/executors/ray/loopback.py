"""Local Ray clusters that live on 127.0.0.1 only.

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

from tpt.core.errors import BackendError

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
    """`ray.init(**kwargs)` for a new single-machine cluster on 127.0.0.1; fails if a node is elsewhere."""
    pin_to_loopback()
    ray.init(**kwargs)
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
