"""Old import paths of moved modules, kept working for one release (0.2 removes them).

`import tpt` installs one finder at the front of `sys.meta_path`. Importing a moved module by its old name
(or a module under a moved package) imports the module at its new name and binds the old name to the
same module object, with a DeprecationWarning naming the new path: the classes, the functions and the
module state are the very ones the new path gives, so `isinstance`, `except` and monkeypatching agree
between the two names. Nothing in tpt imports an old name (tests/core/test_import_graph.py checks it);
docs/architecture.md lists the layout.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import warnings
from types import ModuleType

# The table is written from the move list by the moves script; edit the list, not the table.
# BEGIN-OLD-PATHS (apply_moves.py writes this table)
MOVED: dict[str, str] = {
    "tpt.artifacts": "tpt.core.artifacts",
    "tpt.augment.backend": "tpt.augment.backends.base",
    "tpt.configs": "tpt.core.configs",
    "tpt.control_tokens": "tpt.core.control_tokens",
    "tpt.corpus": "tpt.formats.corpus",
    "tpt.distributed": "tpt.augment.executors.ray",
    "tpt.distributed.ray_executor": "tpt.augment.executors.ray.executor",
    "tpt.duplicate_ids": "tpt.core.duplicate_ids",
    "tpt.errors": "tpt.core.errors",
    "tpt.hfmodel": "tpt.core.hfmodel",
    "tpt.machine_errors": "tpt.core.machine_errors",
    "tpt.outputlock": "tpt.storage.outputlock",
    "tpt.progress": "tpt.core.progress",
    "tpt.serve": "tpt.augment.servers",
    "tpt.train.sft_cli": "tpt.sft.cli",
    "tpt.train.sft_data": "tpt.sft.data",
    "tpt.train.sft_stage": "tpt.sft.stage",
}
# END-OLD-PATHS


def new_name(name: str) -> str | None:
    """The module's name today, when `name` is an old name (a moved module, or one under a moved package)."""
    old = name
    while old:
        if old in MOVED:
            return MOVED[old] + name[len(old) :]
        old = old.rpartition(".")[0]
    return None


class _Alias:
    """A meta-path finder and its loader (the protocols of importlib.abc, without importing it: that
    module pulls in importlib.resources, pathlib and tempfile, and `import tpt` stays light)."""

    def find_spec(self, fullname: str, path=None, target=None) -> importlib.machinery.ModuleSpec | None:
        new = new_name(fullname)
        return importlib.machinery.ModuleSpec(fullname, self, origin=new) if new else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # a placeholder module; exec_module puts the real one in its place

    def exec_module(self, module: ModuleType) -> None:
        old, new = module.__name__, module.__spec__.origin
        # stacklevel 2 is the importing line: warnings skips the import system's own frames.
        warnings.warn(f"{old} moved to {new}; the old name goes in tpt 0.2", DeprecationWarning, stacklevel=2)
        # The import system returns what sys.modules holds under the old name once this returns.
        sys.modules[old] = importlib.import_module(new)


_FINDER = _Alias()


def install() -> None:
    """Put the finder first (before the path finder, which would load a second copy from the new file)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
