"""The one error hierarchy; each class carries the exit code of docs/reference.md §1.

Messages read "failed to <action>: <cause>" and, where a user can act, end with a hint.
"""

from __future__ import annotations

import errno


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


class DockerfileBuildFailed(LifecycleError):
    """A custom Dockerfile could not be read or built (docs/reference.md §7)."""

    exit_code = 90


class Interrupted(LifecycleError):
    """The user interrupted the command."""

    exit_code = 130



class ContainerStartFailed(LifecycleError):
    """``run`` or ``invoke`` failed before the container started (as ``docker run`` uses 125)."""

    exit_code = 125


_OS_HINTS = {
    errno.ENOSPC: "free space on that filesystem, or point --cache-dir or HYBRIDLESS_HOME at "
                  "another one",
    errno.EDQUOT: "free space within your quota, or point --cache-dir or HYBRIDLESS_HOME at "
                  "another filesystem",
    errno.EROFS: "make that path writable, or point --cache-dir or HYBRIDLESS_HOME elsewhere",
    errno.EACCES: "give this user access to that path (read for the app, write for the cache "
                  "and the store)",
    errno.EPERM: "give this user access to that path",
    errno.ENOTDIR: "a file stands where a directory is needed: --cache-dir, XDG_CACHE_HOME and "
                   "HYBRIDLESS_HOME must name directories",
    errno.EEXIST: "a file stands where a directory is needed: --cache-dir, XDG_CACHE_HOME and "
                  "HYBRIDLESS_HOME must name directories",
    errno.ENOENT: "a file disappeared while the command ran; run it again",
    errno.ENAMETOOLONG: "shorten the path, or flatten the directories",
    errno.ELOOP: "remove the symlink loop",
}


def os_failure(cls: type[LifecycleError], action: str, exc: OSError) -> LifecycleError:
    """A one-line error of class ``cls`` for an OSError the environment caused.

    Full disks, read-only or missing directories and files removed mid-build are not bugs:
    they get the phase's exit code, the path and what to do, instead of a traceback.
    """
    where = f": {_short(str(exc.filename))}" if exc.filename else ""
    reason = exc.strerror or type(exc).__name__
    return cls(f"failed to {action}: {reason}{where}", hint=_OS_HINTS.get(exc.errno or 0))


def _short(path: str, keep: int = 120) -> str:
    """A path cut in the middle when long (ENAMETOOLONG paths run to kilobytes)."""
    return path if len(path) <= 2 * keep else f"{path[:keep]}…{path[-keep:]}"
