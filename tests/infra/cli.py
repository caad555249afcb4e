"""Run the lifecycle's command line in a subprocess, isolated from the developer's state."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LIFECYCLE_COMMAND: tuple[str, ...] = (sys.executable, "-m", "lifecycle")

# Inherited values of these would change what the CLI does behind the test's back.
_DROPPED_PREFIXES = ("HYBRIDLESS_",)
_DROPPED_NAMES = frozenset({"SOURCE_DATE_EPOCH", "XDG_DATA_HOME"})


class CliRunner:
    """Call it with CLI arguments; it runs the CLI with its own ``home`` and ``cache`` dirs."""

    def __init__(self, home: Path, cache: Path, command: Sequence[str] = LIFECYCLE_COMMAND) -> None:
        self.home = home
        self.cache = cache
        self.command = tuple(command)

    def environment(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Return the environment a run gets: ours, isolated, with ``extra`` on top."""
        env = {
            name: value
            for name, value in os.environ.items()
            if name not in _DROPPED_NAMES and not name.startswith(_DROPPED_PREFIXES)
        }
        env["HYBRIDLESS_HOME"] = str(self.home)
        env["XDG_CACHE_HOME"] = str(self.cache)
        # The checkout wins over any installed copy, so the tests run the code under test.
        inherited = env.get("PYTHONPATH")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), inherited]))
        env.update(extra or {})
        return env

    def __call__(
        self,
        *args: str | os.PathLike[str],
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        input: str | None = None,
        timeout: float = 600,
    ) -> subprocess.CompletedProcess[str]:
        """Run the CLI with ``args`` and return the finished process, output captured as text."""
        return subprocess.run(
            [*self.command, *(os.fspath(arg) for arg in args)],
            cwd=cwd,
            env=self.environment(env),
            input=input,
            # No input means none at all: a CLI waiting on the terminal would hang the test.
            stdin=subprocess.DEVNULL if input is None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
