"""The Python conformance handler: performs the behaviour a case names (see ../README.md)."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

_cases: dict[str, dict[str, Any]] = {}
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


def _load_case(name: str | None) -> dict[str, Any] | None:
    if not name:
        return None
    if name not in _cases:
        # Case names come from a test request; refuse anything that could leave the directory.
        if not _SAFE_NAME.match(name):
            raise ValueError(f"bad case name {name!r}")
        path = Path(os.environ["CONFORMANCE_CASES_DIR"]) / f"{name}.json"
        _cases[name] = json.loads(path.read_text(encoding="utf-8"))
    return _cases[name]


def _case_name(event: dict[str, Any]) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == "x-conformance-case":
            return str(value)
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if key.lower() == "x-conformance-case":
            return str(values[0])
    return None


def _json(value: Any) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(value),
    }


def _neutral_context(context: Any) -> dict[str, Any]:
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": int(context.memory_limit_in_mb),
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_time_in_millis": context.get_remaining_time_in_millis(),
    }


def _perform(behavior: dict[str, Any], event: dict[str, Any], context: Any) -> Any:
    if "sleep_ms" in behavior:
        time.sleep(behavior["sleep_ms"] / 1000)
        return _perform(behavior.get("then") or {"echo": True}, event, context)
    for key in ("return", "callback", "succeed"):
        if key in behavior:
            return behavior[key]
    for key in ("throw", "reject", "callback_error", "fail"):
        if key in behavior:
            raise Exception(behavior[key])
    if behavior.get("context"):
        request_context = event.get("requestContext") or {}
        return _json(
            {
                "context": _neutral_context(context),
                "event_request_id": request_context.get("requestId"),
            }
        )
    return _json(event)


def handler(event: dict[str, Any], context: Any) -> Any:
    """Do what the case named by the ``x-conformance-case`` header asks; echo by default."""
    spec = _load_case(_case_name(event))
    behavior = (spec or {}).get("behavior") or {"echo": True}
    return _perform(behavior, event, context)
