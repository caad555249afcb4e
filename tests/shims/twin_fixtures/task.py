"""Task handlers for the tests both shims share (test_both.py); task.mjs is the same in Node."""

from __future__ import annotations

import json
import sys
import time
from typing import Any


class TaskError(Exception):
    """The error ``boom`` raises, named the same in both languages."""


def ok(event: Any, context: Any) -> Any:
    """Succeed with statusCode 200 and the event."""
    return {"statusCode": 200, "event": event}


def no_status(event: Any, context: Any) -> Any:
    """Succeed without a statusCode."""
    return {"done": True}


def not_found(event: Any, context: Any) -> Any:
    """Return a status other than 200."""
    return {"statusCode": 404, "body": "missing"}


def boom(event: Any, context: Any) -> Any:
    """Print a line, then fail."""
    print("a line the handler printed")
    raise TaskError("task exploded")


def show(event: Any, context: Any) -> None:
    """Write the event it got to stderr (scheduled tasks' stdout differs between the shims)."""
    sys.stderr.write(f"EVENT {json.dumps(event, separators=(',', ':'))}\n")


def context(event: Any, context: Any) -> Any:
    """The remaining time before and after a 200 ms wait, and the context's names."""
    first = context.get_remaining_time_in_millis()
    time.sleep(0.2)
    return {"first": first, "second": context.get_remaining_time_in_millis(),
            "name": context.function_name, "memory": context.memory_limit_in_mb}  # fmt: skip
