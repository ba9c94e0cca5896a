"""What a stage prints last: the command to run next on its output. Light: shlex only."""

from __future__ import annotations

import shlex


def inspect_command(shown: str) -> str:
    """The line augment, validate and pack end with: the command that writes the HTML report of their
    output directory (`tpt inspect`, docs/inspect.md) into it. `shown` is the directory as the user
    names it (`tpt.storage.display(output)`: a local path or an object-store URL)."""
    shown = shown.rstrip("/")
    return f"report: tpt inspect {shlex.quote(shown)} --output {shlex.quote(shown + '/report.html')}"
