"""What a stage prints last: the command to run next on its output. Light: shlex and tpt.storage only."""

from __future__ import annotations

import shlex


def inspect_command(output: object) -> str:
    """The line augment, validate and pack end with: the command that writes the HTML report of their
    output directory (`tpt inspect`, docs/inspect.md) into it."""
    from tpt.storage import display

    shown = display(output).rstrip("/")
    return f"report: tpt inspect {shlex.quote(shown)} --output {shlex.quote(shown + '/report.html')}"
