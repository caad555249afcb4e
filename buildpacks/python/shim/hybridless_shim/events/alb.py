"""The Application Load Balancer event, single-value (``alb``) and multi-value (``alb-multi``).

One module for both: they differ only in which of two maps carry the headers and the query.
"""

from __future__ import annotations

from typing import Any

from ..http11 import Request
from .fields import EventSource, encode_body, multi, query_pairs
from .headers import lower_all, lower_last


class Alb:
    """Builds ALB events for one source; ``multi_value`` picks the ``alb-multi`` shape."""

    def __init__(self, source: EventSource, multi_value: bool = False) -> None:
        self._target_group_arn = source.target_group_arn
        self._multi_value = multi_value

    def build(self, request: Request, request_id: str) -> dict[str, Any]:
        """The event for one request (ALB events carry no request id)."""
        body, b64 = encode_body(request.body, request.hmap.get("content-type"))
        event: dict[str, Any] = {
            "requestContext": {"elb": {"targetGroupArn": self._target_group_arn}},
            "httpMethod": request.method,
            "path": request.path,
        }
        # An ALB hands query strings over exactly as sent: no percent-decoding.
        pairs = query_pairs(request.query) if request.query else []
        if self._multi_value:
            event["multiValueQueryStringParameters"] = multi(pairs)
            event["multiValueHeaders"] = lower_all(request)
        else:
            event["queryStringParameters"] = dict(pairs)
            event["headers"] = lower_last(request)
        event["body"] = body if body is not None else ""
        event["isBase64Encoded"] = b64
        return event
