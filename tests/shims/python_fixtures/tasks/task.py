"""Handlers for the task event types (process, scheduledTask, launchableTask, job)."""

from __future__ import annotations

import asyncio
import json
import sys
from decimal import Decimal
from typing import Any


def ok(event: Any, context: Any) -> Any:
    """Succeed with statusCode 200 and the event echoed."""
    return {"statusCode": 200, "event": event}


def no_status(event: Any, context: Any) -> Any:
    """Succeed without a statusCode."""
    return {"done": True, "amount": Decimal("1.5")}


def failed_status(event: Any, context: Any) -> Any:
    """Return a non-200 status."""
    return {"statusCode": 500, "body": "nope"}


def boom(event: Any, context: Any) -> Any:
    """Raise."""
    raise ValueError("task exploded")


def chatty(event: Any, context: Any) -> Any:
    """Print a line and then a partial line before returning."""
    print("working on it")
    sys.stdout.write("no newline here")
    return {"statusCode": 200}


async def async_ok(event: Any, context: Any) -> Any:
    """An async task handler."""
    await asyncio.sleep(0.01)
    return {"statusCode": 200, "remaining_positive": context.get_remaining_time_in_millis() > 0}


def echo(event: Any, context: Any) -> Any:
    """Return what it got."""
    return {"got": event}


def unserializable(event: Any, context: Any) -> Any:
    """Return something JSON cannot express."""
    return {"statusCode": 200, "when": object()}


def show(event: Any, context: Any) -> None:
    """Print the event it got (scheduledTask prints no result of its own)."""
    print(json.dumps(event))
