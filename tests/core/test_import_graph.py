"""The shape of the imports, read from the source (ast): no module cycles, and the layering of the packages.

Every `import` counts, at module level and inside functions (a function-level import is how a cycle
hides); imports under `if TYPE_CHECKING:` count for the layering, not for cycles (they never run). The
old names of moved modules (tpt/_aliases.py) are refused outright, in an import or an import string
(`"tpt.x.y:factory"`): the reader would not see the module behind them.
A package is `tpt.<name>` (`tpt` itself: `__init__`), except the two wings of augment that sit above it,
`tpt.augment.executors.ray` and `tpt.augment.servers`, each its own package. The layers, bottom up:

- core (`tpt.core` and the other shared packages): what crosses a stage boundary and the shared
  machinery; imports no other layer.
- stages: each imports core only (its own package aside), never another stage to read its files; sft is
  built on train's loop and may import train (train never imports sft).
- augment's wings (the Ray executor, the teacher servers): core and augment (augment names them by
  import string and never imports them).
- top (estimate, compare, reproduce, the `tpt` command): anything below, through the stages' API;
  reproduce uses compare's estimator.
"""

from __future__ import annotations

import ast
import functools
import re
from collections import defaultdict
from pathlib import Path

import pytest

from tpt._aliases import MOVED, new_name

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
WINGS = {"tpt.augment.executors.ray": "augment.executors.ray", "tpt.augment.servers": "augment.servers"}
"""Sub-packages that are packages of their own for the layering (the longest prefix wins)."""
CORE = {"__init__", "_aliases", "core", "formats", "quality", "storage", "testing"}
STAGES = {"augment", "validate", "pack", "tokenizer", "train", "sft", "evaluate"}
EXECUTORS = set(WINGS.values())
TOP = {"estimate", "compare", "reproduce", "cli", "__main__"}
ALLOWED = {
    **{p: CORE for p in CORE},
    **{p: CORE for p in STAGES},
    "sft": CORE | {"train"},
    **{p: CORE | {"augment"} for p in EXECUTORS},
    **{p: CORE | STAGES | EXECUTORS | {"estimate", "compare", "cli"} for p in TOP},
}
IMPORT_STRING = re.compile(r"^tpt(\.\w+)+(:\w+)?$")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, modules: set[str], name: str | None = None) -> list[tuple[str, bool]]:
    """(imported tpt module, under TYPE_CHECKING?) for every import statement of the file."""
    name = name or module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: list[tuple[str, bool]] = []

    def resolve(target: str) -> str | None:
        while target and target not in modules:  # `import tpt.a.b.func`-like names: the module part
            target = target.rpartition(".")[0]
        return target or None

    def visit(node: ast.AST, typing_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.body:
                    visit_stmt(sub, True)
                for sub in child.orelse:
                    visit_stmt(sub, typing_only)
                continue
            visit_stmt(child, typing_only)

    def visit_stmt(node: ast.AST, typing_only: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "tpt" and (target := resolve(alias.name)):
                    out.append((target, typing_only))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] == "tpt":
                for alias in node.names:
                    target = resolve(f"{source}.{alias.name}") if alias.name != "*" else resolve(source)
                    if target:
                        out.append((target, typing_only))
        visit(node, typing_only)

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
    return out


@functools.cache
def graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """(runtime edges, all edges incl. TYPE_CHECKING) between tpt modules."""
    files = {module_name(p): p for p in SRC.joinpath("tpt").rglob("*.py")}
    runtime: dict[str, set[str]] = defaultdict(set)
    every: dict[str, set[str]] = defaultdict(set)
    for name, path in files.items():
        for target, typing_only in imports_of(path, set(files)):
            if target == name:
                continue
            every[name].add(target)
            if not typing_only:
                runtime[name].add(target)
    return runtime, every


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(set(edges) | {w for ws in edges.values() for w in ws}):
        if v not in index:
            connect(v)
    return sorted(found)


def package_of(module: str) -> str:
    for prefix in sorted(WINGS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return WINGS[prefix]
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def package_edges(edges: dict[str, set[str]]) -> dict[tuple[str, str], list[str]]:
    """(importing package, imported package) -> the module imports behind it."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for source, targets in edges.items():
        for target in targets:
            a, b = package_of(source), package_of(target)
            if a != b:
                out[(a, b)].append(f"{source} -> {target}")
    return out


def layering_breaks() -> dict[tuple[str, str], str]:
    _, every = graph()
    return {
        (a, b): ", ".join(sorted(via)[:3])
        for (a, b), via in sorted(package_edges(every).items())
        if b not in ALLOWED.get(a, CORE)
    }


def package_cycles() -> list[tuple[str, ...]]:
    _, every = graph()
    packages: dict[str, set[str]] = defaultdict(set)
    for a, b in package_edges(every):
        packages[a].add(b)
    return [tuple(c) for c in cycles(packages)]


def module_cycles() -> list[tuple[str, ...]]:
    runtime, _ = graph()
    return [tuple(c) for c in cycles(runtime)]


def test_the_graph_reader_sees_every_import_form(tmp_path):
    """The reader itself: function-level, relative and TYPE_CHECKING imports are all seen."""
    src = tmp_path / "m.py"
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "import tpt.core.errors\n"
        "from . import b\n"
        "from .c import thing\n"
        "if TYPE_CHECKING:\n"
        "    from tpt.d import T\n"
        "def f():\n"
        "    from tpt.e.f import g\n"
    )
    modules = {"tpt.core.errors", "tpt.x.b", "tpt.x.c", "tpt.d", "tpt.e", "tpt.e.f"}
    assert sorted(imports_of(src, modules, name="tpt.x.m")) == [
        ("tpt.core.errors", False),
        ("tpt.d", True),
        ("tpt.e.f", False),
        ("tpt.x.b", False),
        ("tpt.x.c", False),
    ]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    runtime, _ = graph()
    assert "tpt.augment.executors" in runtime["tpt.augment.cli"]  # the real tree is read


def test_no_module_imports_itself_back_through_others():
    assert module_cycles() == []


def test_no_package_imports_a_package_above_it_or_a_sibling_stage():
    assert [f"{a} -> {b}: {via}" for (a, b), via in layering_breaks().items()] == []


def test_no_package_cycles():
    assert package_cycles() == []


@pytest.mark.parametrize("module", ["tpt.augment.cli", "tpt.augment.stage"])
def test_augment_names_its_executors_without_importing_them(module):
    _, every = graph()
    reached, todo = set(), [module]
    while todo:  # everything the module pulls in, transitively
        for target in every.get(todo.pop(), ()):
            if target not in reached:
                reached.add(target)
                todo.append(target)
    assert not {package_of(m) for m in reached} & (EXECUTORS | TOP)


def test_the_wings_of_augment_are_packages_of_their_own():
    assert package_of("tpt.augment.executors.ray.pool") == "augment.executors.ray"
    assert package_of("tpt.augment.servers") == "augment.servers"
    assert package_of("tpt.augment.executors") == "augment"  # the contract and the local executor
    assert package_of("tpt.core.errors") == "core" and package_of("tpt") == "__init__"


def moved_names_in(path: Path) -> list[str]:
    """`file:line: name` for every import, `from tpt import name` or import string naming a moved module."""
    found = []

    def check(name: str, node: ast.AST) -> None:
        if new_name(name):
            found.append(f"{path.name}:{node.lineno}: {name} (now {new_name(name)})")

    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                check(alias.name, node)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if new_name(node.module):
                check(node.module, node)
                continue
            for alias in node.names:  # `from tpt import corpus`
                if node.module.split(".")[0] == "tpt" and alias.name != "*":
                    check(f"{node.module}.{alias.name}", node)
        elif (
            isinstance(node, ast.Constant) and isinstance(node.value, str) and IMPORT_STRING.match(node.value)
        ):
            check(node.value.partition(":")[0], node)
    return found


def test_nothing_names_a_moved_module_by_its_old_name():
    """Old names work for callers for one release; tpt's own code, tests and benchmarks use the new ones
    (re-run the moves script, docs/architecture.md, on code written against the old layout)."""
    assert MOVED, "the alias table is empty"
    files = [p for d in ("src", "tests", "benchmarks") for p in sorted(ROOT.joinpath(d).rglob("*.py"))]
    keep = {SRC / "tpt" / "_aliases.py", ROOT / "tests" / "core" / "test_aliases.py"}
    assert [hit for p in files if p not in keep for hit in moved_names_in(p)] == []


# BEGIN-OLD-PATHS: the old names below are the test's input (the moves script leaves them)
def test_the_old_name_check_sees_every_form(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "import tpt.errors\n"
        "from tpt.serve.options import x\n"
        "from tpt import corpus\n"
        "def f():\n"
        "    from tpt.distributed import pool\n"
        "TIES = {'ray': 'tpt.distributed.ray_executor:from_args', 'doc': 'see tpt.errors'}\n"
        "import tpt.core.errors, tpt.augment.backends\n"
    )
    assert moved_names_in(src) == [
        "m.py:1: tpt.errors (now tpt.core.errors)",
        "m.py:2: tpt.serve.options (now tpt.augment.servers.options)",
        "m.py:3: tpt.corpus (now tpt.formats.corpus)",
        "m.py:5: tpt.distributed (now tpt.augment.executors.ray)",
        "m.py:6: tpt.distributed.ray_executor (now tpt.augment.executors.ray.executor)",
    ]


# END-OLD-PATHS


def test_the_package_root_holds_only_the_entry_points():
    """Shared primitives live in a named wing (tpt/core/ and the other shared packages), not loose at the root."""
    loose = sorted(p.name for p in SRC.joinpath("tpt").glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "_aliases.py", "cli.py"]
