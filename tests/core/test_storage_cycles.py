"""No circle of any kind among the storage modules and augment's shard modules (issue 24).

test_import_graph.py holds the whole package's graph; this one is stricter where the storage knot was
(`lease` <-> `remote` <-> `readahead`): every import counts, at module level, under `TYPE_CHECKING` and
inside a function alike, since each is an arrow a reader has to follow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import tpt

SRC = Path(tpt.__file__).parent
WATCHED = [
    *sorted((SRC / "storage").glob("*.py")),
    SRC / "augment" / "shards.py",
    SRC / "augment" / "shardcommit.py",
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, known: set[str]) -> set[str]:
    """The watched modules that `path` imports anywhere in its text (a name imported from a package is
    an arrow to that package's __init__, a submodule imported from it an arrow to the submodule)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return (found & known) - {module_name(path)}


def graph() -> dict[str, set[str]]:
    known = {module_name(p) for p in WATCHED}
    return {module_name(p): imports(p, known) for p in WATCHED}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_watch_list_is_the_real_one():
    edges = graph()
    assert "tpt.storage.remote" in edges and "tpt.augment.shardcommit" in edges
    assert "tpt.storage.remote" in edges["tpt.storage.lease"]  # the walker sees run-time arrows
    assert "tpt.storage.readahead" in edges["tpt.storage.remote"]  # ... and function-level ones


def test_the_finder_finds_a_circle_through_any_kind_of_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_circle_in_storage_not_even_through_type_checking_or_function_level_imports():
    cycle = find_cycle(graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_lease_is_out_of_remote():
    """remote.py is transport; checking the lease before a write is the caller's (lease.upload_held)."""
    assert "tpt.storage.lease" not in graph()["tpt.storage.remote"]
