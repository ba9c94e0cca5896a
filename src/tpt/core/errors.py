"""The errors tpt raises for whole-run problems; each message says what is wrong and how to fix it.

Per-record problems (a malformed line, a failed generation) are data, written to failure files and
counted; only a problem that stops the whole run raises one of these.
"""

EXIT_OK = 0
"""Done: every item has an outcome (for `tpt augment`: with no more failures than records)."""
EXIT_INCOMPLETE = 1
"""Stopped before the end with nothing wrong (re-run the same command to continue)."""
EXIT_ERROR = 2
"""A whole-run error (a TptError): a bad option, unreadable input, a backend that cannot start."""
EXIT_FAILURES = 3
"""Finished, but with more failures than records, or no record at all (failures.jsonl says why)."""
EXIT_SERVER_UNUSABLE = 4
"""Stopped early: the teacher cannot do the work (ServerUnusableError); nothing more was recorded."""


class TptError(Exception):
    """Base class: the CLI prints the message (no traceback) and exits with `exit_code` (2)."""

    exit_code = EXIT_ERROR


class ConfigError(TptError):
    """An option or config value is invalid, or conflicts with an earlier run's config."""


class InputError(TptError):
    """Input data cannot be read or does not have the expected shape."""


class BackendError(TptError):
    """A generation backend cannot be built or has died for good."""


class ServerUnusableError(BackendError):
    """The teacher cannot do this run's work at all (a server that cannot stream, answers every document
    with the same error): the run stops, with its own exit status (EXIT_SERVER_UNUSABLE)."""

    exit_code = EXIT_SERVER_UNUSABLE


class TransientBackendError(BackendError):
    """A request failed in a way worth retrying (5xx, 429, timeout, dropped connection, bad body)."""


class ArtifactError(TptError):
    """An artifact on disk is missing, corrupt, or was made by a different config."""


class MissingDependencyError(TptError):
    """An optional package is needed for the requested feature."""

    def __init__(self, package: str, feature: str, extra: str | None = None) -> None:
        hint = f"pip install 'tpt[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{feature} needs the package '{package}', which is not installed: {hint}")
