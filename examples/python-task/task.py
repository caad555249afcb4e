"""Task handlers: a nightly scheduled job, a launchable task and a long-running worker."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from dateutil.relativedelta import relativedelta


def nightly(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Run once with the schedule's input; an input asking to fail makes the task exit 1."""
    if event.get("fail"):
        raise RuntimeError(f"job {event.get('job')!r} failed on purpose")
    now = datetime.now(timezone.utc)
    next_run = (now + relativedelta(days=+1)).replace(hour=2, minute=0, second=0, microsecond=0)
    print(json.dumps({"job": event.get("job"), "next_run": next_run.isoformat()}))
    return {"job": event.get("job")}


def launch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Handle an event given on the command line; its ``status`` becomes the ``statusCode``."""
    if event.get("raise"):
        raise ValueError("asked to raise")
    return {"statusCode": int(event.get("status", 200)), "body": json.dumps({"got": event})}


def work(event: Any, context: Any) -> None:
    """A worker's main loop; this one has one unit of work and then returns (exit 0)."""
    print(json.dumps({"worker": context.function_name, "done": True}))
