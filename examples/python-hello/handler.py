"""A plain Lambda handler: no framework, no dependencies."""

from __future__ import annotations

import json
from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Greet the caller named in the query string, as API Gateway would deliver it."""
    query = event.get("queryStringParameters") or {}
    name = query.get("name", "world")
    body = {
        "message": f"hello, {name}",
        "path": event.get("path"),
        "function": context.function_name,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps(body),
    }
