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

Import strings count as ties too (the registries', src/tpt/core/registry.py): a string literal naming a
`tpt.x.y` module (`"tpt.x.y:attr"`, or an f-string starting `"tpt.x.y:`) follows the same rules as an
import, except that augment names its own wings by string (that is how it reaches them without importing
them). A package's entries in other registries (src/tpt/<package>/entry_points.txt) name its own modules only.
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
STAGES = {"augment", "validate", "pack", "tokenizer", "train", "sft", "evaluate", "inspect"}
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
IMPORT_STRING_HEAD = re.compile(r"^tpt(\.\w+)+:")
"""The constant start of an f-string import string (`f"tpt.evaluate.builtin:{name}"`)."""
STRING_ALLOWED = {**ALLOWED, "augment": CORE | EXECUTORS, "cli": ALLOWED["cli"] | TOP}
"""Who may name whom by import string: as by import; augment its wings; the `tpt` command every command
module (reproduce runs tpt.cli.main in-process, so an import back would be a cycle; a name is not)."""
STRING_EXCEPTIONS = {
    "tpt.train.config -> tpt.sft.config": "the old path of SftConfig, for one release (issue 24); goes with it",
}
"""Known string ties the layering refuses, each with why it stays (a stale entry fails the test)."""
STRING_EXEMPT = {"tpt._aliases": "the table of moved modules' old and new names, not ties"}


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


def import_strings_of(path: Path) -> list[tuple[str, int]]:
    """(module part, line) of every import string in the file: a whole string literal, or the constant
    head of an f-string."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and IMPORT_STRING.match(node.value):
            text = node.value
        elif isinstance(node, ast.JoinedStr) and node.values:
            head = node.values[0]
            if isinstance(head, ast.Constant) and isinstance(head.value, str):
                text = m.group(0) if (m := IMPORT_STRING_HEAD.match(head.value)) else None
        if text:
            found.append((text.partition(":")[0], node.lineno))
    return found


def string_ties(files: dict[str, Path]) -> list[tuple[str, str, str]]:
    """(`module -> target`, line, why) for every import string that the layering refuses."""
    modules = set(files)
    out = []
    for name, path in sorted(files.items()):
        if name in STRING_EXEMPT:
            continue
        for target, line in import_strings_of(path):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if not target:
                continue
            a, b = package_of(name), package_of(target)
            if a != b and b not in STRING_ALLOWED.get(a, CORE):
                out.append((f"{name} -> {target}", f"line {line}", f"{a} may not name {b}"))
    return out


def test_no_import_string_names_a_package_above_it():
    """`"procedural": "tpt.reproduce.teacher:build"` in augment would be an upward tie that no import
    shows; reproduce declares it in its own entry_points.txt instead."""
    files = {module_name(p): p for p in SRC.joinpath("tpt").rglob("*.py")}
    ties = string_ties(files)
    assert [t for t in ties if t[0] not in STRING_EXCEPTIONS] == []
    stale = set(STRING_EXCEPTIONS) - {t[0] for t in ties}
    assert sorted(stale) == [], "stale entries of STRING_EXCEPTIONS: remove them"


def test_the_string_tie_check_sees_both_forms(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "A = {'x': 'tpt.reproduce.teacher:build', 'ok': 'tpt.augment.executors.ray.executor:from_args'}\n"
        "B = {n: f'tpt.compare.cli:{n}' for n in 'ab'}\n"
        "C = 'see tpt.reproduce for more'\n"
    )
    (tmp_path / "none.py").write_text("")
    files = {"tpt.augment.m": src}
    modules = ["tpt.reproduce.teacher", "tpt.compare.cli", "tpt.augment.executors.ray.executor"]
    files.update({m: tmp_path / "none.py" for m in modules})
    assert string_ties(files) == [
        ("tpt.augment.m -> tpt.reproduce.teacher", "line 1", "augment may not name reproduce"),
        ("tpt.augment.m -> tpt.compare.cli", "line 2", "augment may not name compare"),
    ]


def test_a_package_declares_only_its_own_modules_in_other_registries():
    from tpt.core.registry import IN_TREE, in_tree_entries

    declared = {path.parent.name for path in SRC.joinpath("tpt").glob(f"*/{IN_TREE}")}
    assert declared, "no in-tree declaration: reproduce's procedural backend is one"
    for path in SRC.joinpath("tpt").glob(f"*/{IN_TREE}"):
        owner = path.parent.name
        text = path.read_text(encoding="utf-8")
        for group, entries in in_tree_entries().items():
            for name, entry in entries:
                if f"{name} = {entry}" in text:
                    assert package_of(entry.partition(":")[0]) == owner, f"{path}: {group} {name} = {entry}"


def test_the_package_root_holds_only_the_entry_points():
    """Shared primitives live in a named wing (tpt/core/ and the other shared packages), not loose at the root."""
    loose = sorted(p.name for p in SRC.joinpath("tpt").glob("*.py"))
    assert loose == ["__init__.py", "__main__.py", "_aliases.py", "cli.py"]
