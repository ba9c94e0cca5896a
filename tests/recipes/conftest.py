"""Read the shell recipes the way bash would run them: defaults expanded, continuations joined."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"


def recipe_commands(path: Path) -> list[list[str]]:
    """argv of every `tpt ...` and `torchrun ...` command in a recipe, with its ${VAR:-default}s filled in."""
    text = path.read_text().replace("\\\n", " ")
    defaults: dict[str, str] = {}
    for name, value in re.findall(r"^(\w+)=\$\{\1:-([^}]*)\}", text, re.M):
        defaults[name] = re.sub(r"\$(\w+)", lambda m: defaults.get(m.group(1), ""), value)
    commands = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(("tpt ", "exec torchrun ", "torchrun ")):
            expanded = re.sub(r"\$\{?(\w+)\}?", lambda m: defaults[m.group(1)], line)  # KeyError: undefined
            argv = shlex.split(expanded)
            commands.append(argv[1:] if argv[0] == "exec" else argv)
    return commands


@pytest.fixture
def commands_of():
    return recipe_commands
