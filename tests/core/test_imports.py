"""`import tpt` and `tpt --help` stay light: heavy packages load only in the modules that need them."""

import subprocess
import sys

HEAVY = ("torch", "transformers", "vllm", "ray", "matplotlib", "datasets", "aiohttp", "pyarrow")


def test_import_tpt_is_light():
    # Building every command's parser imports every stage's cli module: they must all stay light.
    code = (
        "import sys, tpt, tpt.cli\nfor c in tpt.cli.COMMANDS: tpt.cli.build_parser(c)\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    assert subprocess.check_output([sys.executable, "-c", code], text=True).strip() == "[]"


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
