"""The errors tpt raises for whole-run problems; each message says what is wrong and how to fix it.

Per-record problems (a malformed line, a failed generation) are data, written to failure files and
counted; only a problem that stops the whole run raises one of these.
"""


class TptError(Exception):
    """Base class: the CLI prints the message (no traceback) and exits with status 2."""


class ConfigError(TptError):
    """An option or config value is invalid, or conflicts with an earlier run's config."""


class InputError(TptError):
    """Input data cannot be read or does not have the expected shape."""


class BackendError(TptError):
    """A generation backend cannot be built or has died for good."""


class TransientBackendError(BackendError):
    """A request failed in a way worth retrying (5xx, 429, timeout, dropped connection, bad body)."""


class ArtifactError(TptError):
    """An artifact on disk is missing, corrupt, or was made by a different config."""


class MissingDependencyError(TptError):
    """An optional package is needed for the requested feature."""

    def __init__(self, package: str, feature: str, extra: str | None = None) -> None:
        hint = f"pip install 'tpt[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{feature} needs the package '{package}', which is not installed: {hint}")
