"""The old import paths of moved modules (tpt/_aliases.py) give the very module of the new path, for one release."""

from __future__ import annotations

import json
import subprocess
import sys

from tpt._aliases import MOVED, new_name

# BEGIN-OLD-PATHS: this file imports the old names on purpose (the moves script leaves them)


def run(script: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-W", "always::DeprecationWarning", "-c", script], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return {"result": json.loads(out.stdout.strip().splitlines()[-1]), "stderr": out.stderr}


def test_every_old_name_imports_the_same_module_object_as_its_new_name():
    # Each row of the table, and each module under a moved package (`tpt.serve.engines`, ...).
    got = run(
        "import importlib, json, pkgutil, sys\n"
        "from tpt._aliases import MOVED\n"
        "pairs = dict(MOVED)\n"
        "for old, new in MOVED.items():\n"
        "    module = importlib.import_module(new)\n"
        "    for sub in pkgutil.iter_modules(getattr(module, '__path__', [])):\n"
        "        pairs[f'{old}.{sub.name}'] = f'{new}.{sub.name}'\n"
        "same = {old: importlib.import_module(old) is importlib.import_module(new) for old, new in pairs.items()}\n"
        "names = {old: sys.modules[old].__name__ for old in pairs}\n"
        "print(json.dumps([pairs, same, names]))\n"
    )["result"]
    pairs, same, names = got
    assert {"tpt.serve.engines", "tpt.distributed.pool", "tpt.distributed.ray_executor"} <= set(pairs)
    assert same == {old: True for old in pairs}
    assert names == pairs  # the module keeps its own name (pickles, tracebacks and logs say the new path)


def test_from_imports_give_the_same_class_and_a_warning_names_the_new_path():
    got = run(
        "import json\n"
        "from tpt.errors import ConfigError as Old\n"
        "from tpt.core.errors import ConfigError as New\n"
        "import tpt.serve.options, tpt.augment.servers.options\n"
        "from tpt.distributed import pool\n"
        "import tpt.augment.executors.ray.pool as new_pool\n"
        "import tpt.augment.backend, tpt.augment.backends.base\n"
        "print(json.dumps([Old is New, tpt.serve.options is tpt.augment.servers.options, pool is new_pool,"
        " tpt.augment.backend.SamplingParams is tpt.augment.backends.base.SamplingParams]))\n"
    )
    assert got["result"] == [True, True, True, True]
    # Said at the line that imports the old name (line 2 of the script), so Python's default filters show it
    # for a script's own imports.
    assert "<string>:2: DeprecationWarning: tpt.errors moved to tpt.core.errors" in got["stderr"]


def test_one_copy_of_each_module_however_it_is_first_imported():
    # Old name first, then the new one (the other order is the test above): one module object, both names.
    got = run(
        "import json, sys\n"
        "import tpt.outputlock\n"
        "import tpt.storage.outputlock\n"
        "copies = {id(m) for m in list(sys.modules.values()) if (getattr(m, '__file__', None) or '').endswith('outputlock.py')}\n"
        "print(json.dumps([len(copies), sys.modules['tpt.outputlock'] is sys.modules['tpt.storage.outputlock']]))\n"
    )
    assert got["result"] == [1, True]


def test_a_name_that_never_existed_still_fails_as_missing():
    got = subprocess.run(
        [sys.executable, "-c", "import tpt.serve.nothing_here"], capture_output=True, text=True
    )
    assert got.returncode == 1 and "ModuleNotFoundError" in got.stderr
    assert new_name("tpt.serve.nothing_here") == "tpt.augment.servers.nothing_here"
    assert new_name("tpt.servers") is None and new_name("tpt.errorsx") is None


def test_the_table_maps_each_old_name_to_a_module_that_exists():
    import importlib.util

    assert MOVED and all(importlib.util.find_spec(new) is not None for new in MOVED.values())


def test_the_finder_keeps_import_tpt_light():
    # Only what the interpreter's own import system is made of (no importlib.abc: it loads pathlib,
    # tempfile and importlib.resources).
    script = "import sys, json; before = set(sys.modules); import tpt; print(json.dumps(sorted(set(sys.modules) - before)))"
    loaded = set(run(script)["result"]) - {"tpt", "tpt._aliases"}
    assert loaded <= {
        "__future__",
        "importlib",
        "importlib._bootstrap",
        "importlib._bootstrap_external",
        "importlib.machinery",
        "types",
        "warnings",
    }, loaded


# END-OLD-PATHS
