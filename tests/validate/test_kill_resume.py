"""`tpt validate` killed with SIGKILL just before its 3rd unit (input file) commits, then run again: the two
committed units are not judged again, and kept/rejected are byte-identical to an uninterrupted run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.validate.conftest import DOCUMENT, THINKING

# Runs `tpt validate`, counting unit commits in COUNT; with KILL_AT=n it SIGKILLs itself at the n-th.
DRIVER = """
import os, signal, sys
from pathlib import Path
from tpt.validate import units
count, kill_at = Path(sys.argv[1]), int(sys.argv[2])
real = units.UnitBook.commit
def commit(self, unit, *a, **k):
    n = int(count.read_text()) + 1 if count.exists() else 1
    count.write_text(str(n))
    if n == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, unit, *a, **k)
units.UnitBook.commit = commit
from tpt.cli import main
sys.exit(main(sys.argv[3:]))
"""


def corpus(root: Path) -> Path:
    root.mkdir()
    for f in range(5):
        with (root / f"part-{f:08d}.jsonl").open("w") as out:
            for i in range(40):
                thinking = THINKING if i % 7 else "Too short."
                doc_id = i if i % 5 == 0 else f"{f}-{i}"  # ids 0, 5, ... repeat across files
                rec = {"id": doc_id, "text": DOCUMENT, "thinking": thinking, "finish_reason": "stop"}
                out.write(json.dumps(rec) + "\n")
    return root


def validate(tmp: Path, src: Path, out: Path, count: Path, kill_at: int) -> int:
    script = tmp / "driver.py"
    script.write_text(DRIVER)
    argv = [sys.executable, str(script), str(count), str(kill_at), "validate", str(src), "--output", str(out)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300).returncode


def test_kill_nine_then_resume_redoes_only_the_uncommitted_units(tmp_path: Path) -> None:
    src = corpus(tmp_path / "records")
    assert validate(tmp_path, src, tmp_path / "whole", tmp_path / "n0", 0) == 0
    assert validate(tmp_path, src, tmp_path / "out", tmp_path / "n1", 3) == -9  # killed at the 3rd commit
    assert validate(tmp_path, src, tmp_path / "out", tmp_path / "n2", 0) == 0
    assert (tmp_path / "n2").read_text() == "3"  # units 2, 3 and 4: the two committed ones were not redone
    for name in ("kept.jsonl", "rejected.jsonl"):
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "whole" / name).read_bytes()
    assert (tmp_path / "out" / "kept.jsonl").read_text().count("\n") == 170  # 200 less the 30 short ones
    whole = json.loads((tmp_path / "whole" / "summary.json").read_text())
    again = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert {k: v for k, v in again.items() if k != "wall_seconds"} == {
        k: v for k, v in whole.items() if k != "wall_seconds"
    }
