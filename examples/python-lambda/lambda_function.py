"""A function for Lambda's container-image runtime, testable locally through the emulator."""

from __future__ import annotations

from typing import Any


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Add the numbers in ``event["numbers"]``; a missing list is the caller's error."""
    if "numbers" not in event:
        raise KeyError("numbers")
    return {
        "sum": sum(event["numbers"]),
        "request_id": context.aws_request_id,
        "function": context.function_name,
        "memory_mb": context.memory_limit_in_mb,
    }
