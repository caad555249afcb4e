"""Handlers the Python shim tests call directly (not the conformance corpus)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any


def _query(event: dict[str, Any], name: str, default: str) -> str:
    return str((event.get("queryStringParameters") or {}).get(name, default))


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Return the event as JSON."""
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps(event)}  # fmt: skip


def sleepy(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Sleep ``?ms=`` milliseconds (time.sleep), then answer."""
    time.sleep(int(_query(event, "ms", "0")) / 1000)
    return {"statusCode": 200, "body": "slept"}


def spin(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Burn CPU for ``?ms=`` milliseconds without ever sleeping (holds the GIL)."""
    end = time.monotonic() + int(_query(event, "ms", "0")) / 1000
    n = 0
    while time.monotonic() < end:
        n += 1
    return {"statusCode": 200, "body": str(n)}


async def async_sleepy(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Await ``?ms=`` milliseconds on the loop, then answer with the remaining time."""
    await asyncio.sleep(int(_query(event, "ms", "0")) / 1000)
    return {"statusCode": 200, "body": json.dumps(
        {"remaining": context.get_remaining_time_in_millis()})}  # fmt: skip


async def async_boom(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Raise from a coroutine."""
    await asyncio.sleep(0)
    raise RuntimeError("async boom")


def returns_coroutine(event: dict[str, Any], context: Any) -> Any:
    """A plain function that returns a coroutine (as some wrappers do)."""
    return async_sleepy(event, context)


def big(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Return the length of the request body."""
    body = event.get("body") or ""
    return {"statusCode": 200, "body": str(len(body))}


async def async_in_task(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Needs a current Task, as ``asyncio.timeout`` and many libraries do."""
    task = asyncio.current_task()
    await asyncio.wait_for(asyncio.sleep(0), timeout=1)
    return {"statusCode": 200, "body": json.dumps({"in_task": task is not None})}
