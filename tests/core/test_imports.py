"""`import tpt` and `tpt --help` stay light: heavy packages load only in the modules that need them.

The one import-lightness test: `import tpt` (with the light core modules), and each command's parser
(which imports that stage's cli module), each in a fresh interpreter, with the modules the stage's help or
registry needs.
"""

import subprocess
import sys

import pytest

from tpt.cli import COMMANDS

HEAVY = (
    "torch",
    "transformers",
    "vllm",
    "ray",
    "matplotlib",
    "datasets",
    "aiohttp",
    "pyarrow",
    "numpy",
    "yaml",
)
# Modules a command's parser, help or registry leans on beyond its cli module, held to the same rule.
ALSO_IMPORTED = {
    "augment": ("tpt.augment.backends.base",),
    "train": ("tpt.train.config", "tpt.train.options"),
    "eval": ("tpt.evaluate.stage", "tpt.evaluate.lm_eval_export"),
}


# What crosses stages is read by light code: the record formats and the checks' options load no numpy.
LIGHT_CORE = (
    "tpt.formats",
    "tpt.formats.records",
    "tpt.formats.reading",
    "tpt.formats.compression",
    "tpt.formats.text",
    "tpt.formats.student",
    "tpt.formats.checkpoint",
    "tpt.quality",
    "tpt.quality.options",
)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_import_tpt_and_every_command_parser_are_light(command: str | None) -> None:
    lines = ["import sys, tpt"]
    if command is None:
        lines += [f"import {m}" for m in LIGHT_CORE]
    else:
        lines += ["import tpt.cli", f"tpt.cli.build_parser({command!r})"]
        lines += [f"import {m}" for m in ALSO_IMPORTED.get(command, ())]
    lines.append(f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    assert subprocess.check_output([sys.executable, "-c", "\n".join(lines)], text=True).strip() == "[]"


def test_python_dash_m_tpt_lists_the_stages():
    out = subprocess.run([sys.executable, "-m", "tpt", "--help"], capture_output=True, text=True, check=True)
    assert "augment" in out.stdout


def test_errors_print_a_message_not_a_traceback(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tpt",
            "augment",
            str(tmp_path / "missing.jsonl"),
            "--output",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 2
    assert "tpt augment: error: input" in out.stderr and "Traceback" not in out.stderr


def test_a_local_augment_run_loads_none_of_the_object_storage_machinery(tmp_path) -> None:
    # A newcomer following a local run reads only what it runs: the remote paths, the lease and the
    # object-store shard files load with the first URL (docs/object-storage.md).
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"id": 1, "text": "The sum of 2 and 3 is 5."}\n')
    script = "\n".join(
        [
            "import sys, tpt.cli",
            f"rc = tpt.cli.main(['augment', {str(corpus)!r}, '--output', {str(tmp_path / 'out')!r},"
            " '--backend', 'procedural', '--no-progress'])",
            "print(rc, sorted(m for m in sys.modules if m.startswith('tpt.storage.') or m == 'fsspec'))",
        ]
    )
    out = subprocess.check_output([sys.executable, "-c", script], text=True, stderr=subprocess.DEVNULL)
    # exit 3: the procedural teacher fails a record without a `problem` field, and a run with only
    # failures exits non-zero (docs/backends-http.md, exit status); what matters here is the modules
    local = ["tpt.storage.localshards", "tpt.storage.outputlock", "tpt.storage.urls"]  # the local disk's
    assert out.strip().splitlines()[-1] == f"3 {local}"
