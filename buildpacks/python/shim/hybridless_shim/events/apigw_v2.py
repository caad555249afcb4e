"""The API Gateway HTTP API 2.0 event (``apigw-v2``), also what Lambda Function URLs send."""

from __future__ import annotations

from typing import Any

from ..http11 import Request
from .fields import (
    EventSource,
    clf_time,
    decode,
    domain_parts,
    encode_body,
    http_api_path,
    query_pairs,
    source_ip,
)
from .headers import joined_and_cookies


class HttpV2:
    """Builds HTTP API 2.0 events for one source."""

    def __init__(self, source: EventSource) -> None:
        self._context: dict[str, Any] = {
            "accountId": source.account_id,
            "apiId": source.api_id,
            "domainName": None,
            "domainPrefix": None,
            "http": None,
            "requestId": None,
            "routeKey": "$default",
            # Serverless's httpApi deploys to the $default stage, whatever STAGE says.
            "stage": "$default",
            "time": None,
            "timeEpoch": None,
        }

    def build(self, request: Request, request_id: str) -> dict[str, Any]:
        """The event for one request."""
        now_ms = int(request.received * 1000)
        headers, cookies = joined_and_cookies(request)
        query: dict[str, str] = {}
        if request.query:
            for name, value in query_pairs(request.query):
                key, val = decode(name), decode(value)
                query[key] = f"{query[key]},{val}" if key in query else val
        domain, prefix = domain_parts(headers.get("host"))
        raw_path = http_api_path(request.path)

        context = self._context.copy()
        context["domainName"] = domain
        context["domainPrefix"] = prefix
        context["http"] = {
            "method": request.method,
            "path": raw_path,
            "protocol": request.version,
            "sourceIp": source_ip(request),
            "userAgent": headers.get("user-agent", ""),
        }
        context["requestId"] = request_id
        context["time"] = clf_time(now_ms)
        context["timeEpoch"] = now_ms

        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": raw_path,
            "rawQueryString": request.query,
        }
        if cookies:
            event["cookies"] = cookies
        event["headers"] = headers
        if query:
            event["queryStringParameters"] = query
        event["requestContext"] = context
        body, b64 = encode_body(request.body, headers.get("content-type"))
        if body is not None:
            event["body"] = body
        event["isBase64Encoded"] = b64
        return event
