"""Hostile-handler fixture: returns the result named by the x-hostile header (see results.json)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

RESULTS = json.loads((Path(__file__).resolve().parent / "results.json").read_text("utf-8"))
# Results JSON cannot spell: a header name that is not a string at all.
RESULTS["name-not-string"] = {"statusCode": 200, "headers": {1: "x"}, "body": "ok"}
RESULTS["multi-name-not-string"] = {"statusCode": 200, "multiValueHeaders": {2: ["x"]}}


def handler(event: dict[str, Any], context: Any) -> Any:
    """Return the hostile result the request names; ``sleep`` holds the slot for 1.5 s."""
    headers = event.get("headers") or event.get("multiValueHeaders") or {}
    name = headers.get("x-hostile") or headers.get("X-Hostile") or "fine"
    if isinstance(name, list):
        name = name[-1]
    if name == "sleep":
        time.sleep(1.5)
        return {"statusCode": 200, "body": "late"}
    return RESULTS[name]
