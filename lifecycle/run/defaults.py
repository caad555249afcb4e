"""A process's launcher defaults, read from the image, so ``invoke`` never overrides them.

The launcher (:mod:`lifecycle.phases.launcher`) sets a process's defaults only where the
environment lacks them, so whatever ``invoke`` puts in the environment wins. Lambda's own
variables (``AWS_LAMBDA_FUNCTION_MEMORY_SIZE`` from the function's ``memory``, say) must keep
the image's values: this reads the launcher out of a created, never started, container and
parses the defaults of one process from the lines the launcher's ``render`` writes.
"""

from __future__ import annotations

import io
import re
import shlex
import tarfile
from typing import Any

LAUNCHER_PATH = "/hybridless/launcher"
_CASE_RE = re.compile(r"^  (?P<name>[A-Za-z0-9][A-Za-z0-9_.-]*)\)$")
_DEFAULT_RE = re.compile(
    r'^    \[ -n "\$\{(?P<key>[A-Za-z_][A-Za-z0-9_]*)\+x\}" \] \|\| '
    r"\{ (?P=key)=(?P<value>.*); export (?P=key); \}$"
)
_MAX_LAUNCHER = 1024 * 1024


def process_defaults(client: Any, image_id: str, process: str) -> dict[str, str]:
    """The defaults the image's launcher gives ``process``; empty when it has no launcher."""
    import docker.errors

    try:
        # Created with the image's own entrypoint (the engine wants a command) and never started.
        probe = client.containers.create(image_id)
    except docker.errors.APIError:
        return {}
    try:
        chunks, _stat = probe.get_archive(LAUNCHER_PATH)
        data = b"".join(chunks)
    except docker.errors.APIError:
        return {}
    finally:
        try:
            probe.remove(force=True)
        except docker.errors.APIError:
            pass
    return parse_defaults(_single_file(data), process)


def parse_defaults(script: bytes, process: str) -> dict[str, str]:
    """Parse one process's defaults out of a launcher script."""
    defaults: dict[str, str] = {}
    inside = False
    for line in script.decode("utf-8", "replace").splitlines():
        case = _CASE_RE.match(line)
        if case:
            inside = case["name"] == process
            continue
        default = _DEFAULT_RE.match(line) if inside else None
        if default:
            try:
                words = shlex.split(default["value"])
            except ValueError:
                continue
            defaults[default["key"]] = words[0] if words else ""
    return defaults


def _single_file(archive: bytes) -> bytes:
    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            for member in tar:
                if member.isfile() and member.size <= _MAX_LAUNCHER:
                    handle = tar.extractfile(member)
                    return handle.read() if handle is not None else b""
    except tarfile.TarError:
        pass
    return b""
