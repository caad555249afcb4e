"""The one error hierarchy; each class carries the exit code of docs/reference.md §1.

Messages read "failed to <action>: <cause>" and, where a user can act, end with a hint.
"""

from __future__ import annotations


class LifecycleError(Exception):
    """Base of every error the CLI turns into an exit code without a traceback."""

    exit_code = 51

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(LifecycleError):
    """The command line is wrong."""

    exit_code = 2


class DescriptorSyntaxError(LifecycleError):
    """project.toml is not valid TOML."""

    exit_code = 10


class DescriptorSchemaError(LifecycleError):
    """project.toml parses but fails the schema."""

    exit_code = 11


class DetectFailed(LifecycleError):
    """No buildpack group passed detection."""

    exit_code = 20


class BuildpackDetectError(LifecycleError):
    """A buildpack raised while detecting."""

    exit_code = 21


class BaseImageNotFound(LifecycleError):
    """The run image or stack does not exist."""

    exit_code = 30


class BaseImageFetchError(LifecycleError):
    """The run image exists but could not be read."""

    exit_code = 31


class BuildpackFailed(LifecycleError):
    """A buildpack's build step failed (its command exited non-zero, or it raised)."""

    exit_code = 50


class BuildError(LifecycleError):
    """The lifecycle itself failed during build (including unsafe input it refuses)."""

    exit_code = 51


class ExportError(LifecycleError):
    """The image could not be written."""

    exit_code = 60


class InvalidReference(LifecycleError):
    """An image reference is malformed or names an unknown transport."""

    exit_code = 61


class RegistryUnreachable(LifecycleError):
    """The registry could not be reached."""

    exit_code = 70


class RegistryAuthError(LifecycleError):
    """The registry refused our credentials."""

    exit_code = 71


class RegistryError(LifecycleError):
    """The registry answered with an error."""

    exit_code = 72


class Interrupted(LifecycleError):
    """The user interrupted the command."""

    exit_code = 130



class ContainerStartFailed(LifecycleError):
    """``run`` or ``invoke`` failed before the container started (as ``docker run`` uses 125)."""

    exit_code = 125
