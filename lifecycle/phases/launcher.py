"""The launcher: a POSIX shell script at ``/hybridless/launcher``, the image's entrypoint.

It selects the process (``HYBRIDLESS_PROCESS``, else the default), sets each of the process's
defaults only when the environment does not already have the variable (so the infrastructure
wins), changes to the process's directory and execs the command with the container's
arguments appended. A shell script needs nothing from the base image but ``/bin/sh``, which
every supported stack (Debian, busybox, AWS Lambda bases) has.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence

from lifecycle.errors import BuildError
from lifecycle.hookspecs import Process

PATH = "/hybridless/launcher"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PROCESS_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def default_process(processes: Sequence[Process], requested: str | None = None) -> Process:
    """``--default-process``, else the one marked default, else the first."""
    if not processes:
        raise BuildError("failed to export: no buildpack contributed a process",
                         hint="add a function to project.toml or a Procfile")
    if requested:
        for proc in processes:
            if proc.name == requested:
                return proc
        names = ", ".join(p.name for p in processes)
        raise BuildError(f"failed to export: --default-process {requested!r} is not a process; "
                         f"processes: {names}")
    marked = [p for p in processes if p.default]
    return marked[0] if marked else processes[0]


def render(processes: Sequence[Process], default: Process) -> bytes:
    """The launcher script; deterministic for the same processes."""
    names = ", ".join(p.name for p in processes)
    lines = [
        "#!/bin/sh",
        "# hybridless launcher: pick the process, apply its defaults where unset, exec it.",
        f'proc="${{HYBRIDLESS_PROCESS:-{default.name}}}"',
        'case "$proc" in',
    ]
    for proc in processes:
        if not PROCESS_NAME.match(proc.name):
            raise BuildError(f"failed to export: process name {proc.name!r} is not valid",
                             hint="use letters, digits, '-', '_' and '.'")
        lines.append(f"  {proc.name})")
        for key in sorted(proc.defaults):
            if not ENV_NAME.match(key):
                raise BuildError(f"failed to export: process '{proc.name}' sets an invalid "
                                 f"environment variable name {key!r}")
            value = shlex.quote(proc.defaults[key])
            lines.append(f'    [ -n "${{{key}+x}}" ] || {{ {key}={value}; export {key}; }}')
        lines.append(f"    export HYBRIDLESS_PROCESS={shlex.quote(proc.name)}")
        lines.append(f"    cd {shlex.quote(proc.working_dir)} || exit 125")
        lines.append(f'    exec {" ".join(shlex.quote(a) for a in proc.command)} "$@"')
        lines.append("    ;;")
    lines += [
        "  *)",
        f"    echo \"hybridless launcher: unknown process '$proc' (processes: {names})\" >&2",
        "    exit 125",
        "    ;;",
        "esac",
        "",
    ]
    return "\n".join(lines).encode()
