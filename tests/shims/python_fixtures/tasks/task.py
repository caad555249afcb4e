"""Handlers for the task event types (process, scheduledTask, launchableTask, job)."""

from __future__ import annotations

import asyncio
import json
import sys
from decimal import Decimal
from typing import Any


def decimal_result(event: Any, context: Any) -> Any:
    """Succeed with a Decimal, which the result line writes as a JSON number."""
    return {"done": True, "amount": Decimal("1.5")}


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
