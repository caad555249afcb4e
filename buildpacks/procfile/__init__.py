"""The built-in Procfile buildpack: for apps that bring their own command.

It passes when the app has a ``Procfile`` or the descriptor gives functions a ``command``.
Each Procfile line ``name: command`` (or each function with a command) becomes one process,
run through ``/bin/sh -c`` as Heroku does, with the Hybridless environment contract as its
defaults. It contributes no layers: the command ships inside the app.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from lifecycle import safeio
from lifecycle.descriptor import Function
from lifecycle.errors import BuildError
from lifecycle.functions import hybridless_env
from lifecycle.hookspecs import (
    BUILDPACK_API,
    BuildContext,
    BuildResult,
    DetectContext,
    DetectResult,
    Process,
    hookimpl,
)

LINE = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9_-]*)\s*:\s*(?P<command>\S.*)$")


def parse_procfile(path: Path) -> list[tuple[str, str]]:
    """``name: command`` lines; blank lines and ``#`` comments are skipped."""
    entries: list[tuple[str, str]] = []
    try:
        text = safeio.read_text(path, root=path.parent, limit=1024 * 1024)
    except (OSError, UnicodeDecodeError) as exc:
        why = safeio.describe(exc) if isinstance(exc, OSError) else "it is not UTF-8"
        raise BuildError(f"failed to read {path.name}: {why}",
                         hint="make the Procfile a readable UTF-8 file inside the app") from exc
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = LINE.match(line)
        if not match:
            raise BuildError(f"failed to read {path.name}: line {number} is not 'name: command'",
                             hint=f"got {raw!r}")
        entries.append((match["name"].lower(), match["command"]))
    return entries


class ProcfileBuildpack:
    """Processes from a Procfile or descriptor commands."""

    id = "hybridless/procfile"
    version = "0.1.0"
    api = BUILDPACK_API
    priority = 900  # language buildpacks detect first; this is the fallback
    description = "Runs the app's own command (Procfile or descriptor 'command')."
    hermetic = True  # reads only the app and the descriptor
    tools: tuple[str, ...] = ()

    def detect(self, ctx: DetectContext) -> DetectResult:
        """Pass with a Procfile or with descriptor functions that all have a command."""
        commands = [fn for fn in ctx.descriptor.functions if fn.command]
        if commands and len(commands) == len(ctx.descriptor.functions):
            return DetectResult.passes(f"{len(commands)} function(s) with a command")
        if ctx.exists("Procfile"):
            return DetectResult.passes("found Procfile", functions=tuple(
                self._procfile_functions(ctx.app_dir / "Procfile")))
        if commands:
            return DetectResult.fails("some descriptor functions have a handler but no "
                                      "command; a runtime buildpack must build those")
        return DetectResult.fails("no Procfile and no descriptor function with a command")

    def build(self, ctx: BuildContext) -> BuildResult:
        """One process per function; nothing to install."""
        functions: Sequence[Function] = ctx.functions
        if not functions and (ctx.app_dir / "Procfile").is_file():
            functions = self._procfile_functions(ctx.app_dir / "Procfile")
        processes = []
        for fn in functions:
            if not fn.command:
                raise BuildError(f"failed to build: function '{fn.name}' has no command",
                                 hint="add 'command = \"...\"' to it in project.toml")
            processes.append(Process(name=fn.name, command=fn.command, event=fn.event,
                                     defaults=hybridless_env(fn, ctx.descriptor),
                                     default=fn.default))
            ctx.log.info("process %s: %s", fn.name, " ".join(fn.command))
        return BuildResult(processes=tuple(processes))

    @staticmethod
    def _procfile_functions(path: Path) -> list[Function]:
        entries = parse_procfile(path)
        return [Function(name=name, command=("/bin/sh", "-c", command, name), event="process",
                         default=(name == "web"))
                for name, command in entries]


@hookimpl
def hybridless_buildpacks() -> list[ProcfileBuildpack]:
    """Register the Procfile buildpack."""
    return [ProcfileBuildpack()]
