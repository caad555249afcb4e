"""Running buildpack commands on the build host (the ``local`` executor).

The ``docker`` executor (:mod:`lifecycle.buildcontainer.executor`) runs them in the stack's
build image behind the same :class:`lifecycle.hookspecs.Executor` protocol and shares
:func:`finish` so both fail alike.
"""

from __future__ import annotations

import collections
import logging
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from lifecycle.errors import BuildpackFailed
from lifecycle.hookspecs import RunResult

# Host variables a build command may need. Everything else stays out, so a developer's
# shell (tokens, cloud credentials) does not leak into buildpack commands by accident.
PASSTHROUGH = (
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR", "TERM",
    "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "PIP_CERT",
)
TAIL_LINES = 40


def host_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The part of the host environment passed to build commands."""
    environ = os.environ if environ is None else environ
    return {k: environ[k] for k in PASSTHROUGH if k in environ}


class HostExecutor:
    """Runs commands on the build host, streaming their output to the buildpack's logger."""

    name = "local"

    def run(self, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path,
            log: logging.Logger, check: bool, capture: bool, buildpack: str) -> RunResult:
        """Run ``argv``; on a non-zero exit with ``check``, raise BuildpackFailed (exit 50)."""
        log.debug("$ %s", " ".join(argv))
        tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        captured: list[str] = []
        try:
            proc = subprocess.Popen(
                list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
            )
        except FileNotFoundError as exc:
            raise BuildpackFailed(
                f"failed to run {argv[0]!r} for buildpack '{buildpack}': command not found",
                hint=f"install {argv[0]} on the build host (or pick a stack that has it)",
            ) from exc
        assert proc.stdout is not None
        with proc:
            for line in proc.stdout:
                line = line.rstrip("\n")
                tail.append(line)
                if capture:
                    captured.append(line)
                else:
                    log.info("  %s", line)
        return finish(argv, proc.returncode, tail, captured, check=check, buildpack=buildpack)


def finish(argv: Sequence[str], returncode: int, tail: Sequence[str], captured: Sequence[str],
           *, check: bool, buildpack: str) -> RunResult:
    """The command's result; with ``check``, a non-zero exit is BuildpackFailed with the tail."""
    if check and returncode != 0:
        shown = "\n".join(f"    {line}" for line in tail)
        raise BuildpackFailed(
            f"failed to build: buildpack '{buildpack}' ran {' '.join(argv)!r}, which "
            f"exited with {returncode}" + (f"; last output:\n{shown}" if shown else ""),
        )
    return RunResult(tuple(argv), returncode, "\n".join(captured))
