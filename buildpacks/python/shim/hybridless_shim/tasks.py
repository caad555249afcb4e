"""The one-shot event types: process, scheduledTask, launchableTask and job (CONTRACT §4)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from typing import Any

from .context import make_context
from .invoke import call_blocking
from .loader import Handler
from .log import log
from .payloads import error_payload, format_stack, to_json
from .settings import Settings

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_STATUS = 2
EXIT_BAD_EVENT = 64
# Tasks are not cut off (ECS and Batch own their lifetime), but the context still
# reports a deadline; without TIMEOUT it is Lambda's longest, 15 minutes.
DEFAULT_TASK_TIMEOUT_MS = 900_000



class BadEvent(ValueError):
    """The event given to a task is not valid JSON."""


def parse_event(raw: str | None, default: Any) -> Any:
    """The JSON value of ``raw``, or ``default`` when it is absent or blank."""
    if raw is None or not raw.strip():
        return default
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise BadEvent(f"the event is not valid JSON: {exc}") from None


def _call(handler: Handler, event: Any, settings: Settings) -> Any:
    timeout_ms = settings.timeout_ms or DEFAULT_TASK_TIMEOUT_MS
    deadline = int(time.time() * 1000) + timeout_ms
    context = make_context(settings, str(uuid.uuid4()), deadline)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return call_blocking(handler, event, context, loop)
    finally:
        loop.close()


def _report_error(exc: BaseException) -> dict[str, Any]:
    payload = error_payload(exc, format_stack(exc))
    log(f"[ERROR] {payload['errorType']}: {payload['errorMessage']}")
    for frame in payload["stackTrace"]:
        log(frame)
    return payload


class _LineTracker:
    """Wraps stdout to know whether the handler left a line unfinished."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.at_line_start = True

    def write(self, text: str) -> int:
        """Write through, remembering whether the text ended a line."""
        if text:
            self.at_line_start = text.endswith("\n")
        return int(self._inner.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _print_result(value: Any) -> bool:
    ok = True
    try:
        line = to_json(value)
    except (TypeError, ValueError) as exc:
        log(f"[ERROR] Runtime.MarshalError: unable to serialize the result: {exc}")
        line = to_json({"errorMessage": str(exc), "errorType": "Runtime.MarshalError"})
        ok = False
    out = sys.stdout
    # The result must be the last line of stdout, on a line of its own.
    lead = "" if getattr(out, "at_line_start", True) else "\n"
    out.write(lead + line + "\n")
    out.flush()
    return ok


def exit_code_for(result: Any) -> int:
    """0 when ``statusCode`` is 200 or absent, else 2 (launchableTask and job)."""
    if isinstance(result, dict) and "statusCode" in result:
        try:
            return EXIT_OK if int(result["statusCode"]) == 200 else EXIT_STATUS
        except (TypeError, ValueError):
            return EXIT_STATUS
    return EXIT_OK


def run_task(settings: Settings, handler: Handler, argv: list[str]) -> int:
    """Run the handler once as ``settings.event_type`` says and return the exit code."""
    kind = settings.event_type
    try:
        if kind == "process":
            event: Any = {}
        elif kind == "scheduledTask":
            raw = argv[0] if argv else settings.schedule_input
            event = parse_event(raw, {})
        else:
            event = parse_event(argv[0] if argv else None, {})
    except BadEvent as exc:
        log(f"[ERROR] {kind}: {exc}")
        if kind in ("launchableTask", "job"):
            _print_result({"errorMessage": str(exc), "errorType": "InvalidEvent"})
        return EXIT_BAD_EVENT
    tracker = _LineTracker(sys.stdout)
    sys.stdout = tracker  # type: ignore[assignment]
    try:
        result = _call(handler, event, settings)
    except Exception as exc:
        payload = _report_error(exc)
        if kind in ("launchableTask", "job"):
            _print_result(payload)
        return EXIT_ERROR
    if kind in ("launchableTask", "job"):
        if not _print_result(result):
            return EXIT_ERROR
        return exit_code_for(result)
    return EXIT_OK
