"""The train CLI modules stay light: `tpt --help` must not import torch or transformers."""

from __future__ import annotations

import subprocess
import sys


def test_train_cli_modules_do_not_import_heavy_packages() -> None:
    code = (
        "import sys, tpt.train.cli, tpt.train.sft_cli, tpt.train.config, tpt.train.options; "
        "print(sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))"
    )
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "[]"
