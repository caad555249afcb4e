"""JSON as Lambda writes it: results, and errors as ``{errorMessage, errorType, stackTrace}``."""

from __future__ import annotations

import decimal
import json
import os
import traceback
from typing import Any


def _json_default(value: Any) -> Any:
    # awslambdaric serializes Decimal too (DynamoDB hands numbers over as Decimal).
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def to_json(value: Any) -> str:
    """``value`` as compact JSON, the way Lambda serializes a handler's result."""
    return json.dumps(value, default=_json_default, separators=(",", ":"), ensure_ascii=False)


def error_payload(error: BaseException, stack: list[str] | None) -> dict[str, Any]:
    """The ``{errorMessage, errorType, stackTrace}`` object Lambda reports for a thrown error."""
    return {
        "errorMessage": str(error),
        "errorType": type(error).__name__,
        "stackTrace": list(stack or []),
    }


_SHIM_DIR = os.path.dirname(os.path.abspath(__file__))


def format_stack(error: BaseException) -> list[str]:
    """Frames of ``error``'s traceback, one string per frame, as awslambdaric lists them."""
    frames = traceback.extract_tb(error.__traceback__)
    # Leave out the shim's own frames above the handler: they say nothing to its author.
    while frames and frames[0].filename.startswith(_SHIM_DIR):
        frames.pop(0)
    return [line.rstrip("\n") for line in traceback.format_list(frames)]
