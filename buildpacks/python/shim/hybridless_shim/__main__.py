"""``python3 -m hybridless_shim [EVENT_JSON]``: load the handler, run the configured event type."""

from __future__ import annotations

import asyncio
import sys

from . import emulator, httpd, runtime_api, tasks
from .loader import HandlerLoadError, load_handler
from .log import log
from .settings import Settings, SettingsError, from_environ

EXIT_CONFIG = 78



def run(settings: Settings, argv: list[str]) -> int:
    """Load the handler and run the event type; returns the process exit code."""
    try:
        handler = load_handler(settings.task_root, settings.entrypoint, settings.entrypoint_func)
    except HandlerLoadError as exc:
        log(
            f"hybridless shim: failed to load handler "
            f"'{settings.entrypoint}.{settings.entrypoint_func}' from {settings.task_root}: "
            f"{exc.error_type}: {exc.message}"
        )
        for frame in exc.stack:
            log(frame)
        if settings.event_type == "lambdaContainer" and settings.runtime_api:
            runtime_api.report_init_error(settings.runtime_api, exc)
        return 1
    kind = settings.event_type
    if kind == "httpd":
        return asyncio.run(httpd.serve(settings, handler))
    if kind == "lambdaContainer":
        if settings.runtime_api:
            return runtime_api.run_runtime_api(settings, handler)
        return asyncio.run(emulator.serve(settings, handler))
    return tasks.run_task(settings, handler, argv)


def main(argv: list[str] | None = None) -> int:
    """Read the environment and run; ``argv`` excludes the program name."""
    try:
        settings = from_environ()
    except SettingsError as exc:
        log(f"hybridless shim: invalid configuration: {exc}")
        return EXIT_CONFIG
    return run(settings, list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
