"""httpd handlers for the tests both shims share (test_both.py); app.mjs is the same in Node."""

from __future__ import annotations

import base64
import json
import threading
import time
from typing import Any

_lock = threading.Lock()
_running = 0
_peak = 0


def _millis(event: dict[str, Any]) -> int:
    return int((event.get("queryStringParameters") or {}).get("ms", 0))


def sleepy(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Wait ``?ms=`` milliseconds, then answer "slept"."""
    time.sleep(_millis(event) / 1000)
    return {"statusCode": 200, "body": "slept"}


def counted(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Wait ``?ms=`` milliseconds and answer the most calls seen running at once."""
    global _running, _peak
    with _lock:
        _running += 1
        _peak = max(_peak, _running)
    try:
        time.sleep(_millis(event) / 1000)
    finally:
        with _lock:
            _running -= 1
    return {"statusCode": 200, "body": json.dumps({"peak": _peak})}


def remaining(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer the remaining time before and after a 200 ms wait."""
    first = context.get_remaining_time_in_millis()
    time.sleep(0.2)
    second = context.get_remaining_time_in_millis()
    return {"statusCode": 200, "body": json.dumps({"first": first, "second": second})}


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer the event's path."""
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps({"path": event["path"]})}  # fmt: skip


def big(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Answer the length of the request body it got."""
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event["isBase64Encoded"] else body.encode()
    return {"statusCode": 200, "body": str(len(raw))}
