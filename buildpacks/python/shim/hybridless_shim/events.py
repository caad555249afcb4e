"""Turns an HTTP request into the event API Gateway (REST v1, HTTP API v2) or an ALB would send."""

from __future__ import annotations

import base64
import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .http11 import Request

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_TEXT_TYPES = frozenset(
    (
        "application/json",
        "application/javascript",
        "application/xml",
        "application/x-www-form-urlencoded",
    )
)


@dataclass(frozen=True)
class EventSource:
    """What the events say about where they come from (stage, account, region, names)."""

    stage: str = "$default"
    account_id: str = "123456789012"
    api_id: str = "hybridless"
    region: str = "us-east-1"
    function_name: str = "function"

    @property
    def target_group_arn(self) -> str:
        """The ARN an ALB target group in front of this function would have."""
        return (
            f"arn:aws:elasticloadbalancing:{self.region}:{self.account_id}:"
            f"targetgroup/{self.function_name[:32]}/0123456789abcdef"
        )


_clf_cache: tuple[int, str] = (-1, "")


def clf_time(epoch_ms: int) -> str:
    """``dd/Mon/yyyy:HH:mm:ss +0000``, the time format of ``requestContext.requestTime``."""
    global _clf_cache
    second = epoch_ms // 1000
    if _clf_cache[0] == second:
        return _clf_cache[1]
    t = time.gmtime(second)
    text = (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )
    _clf_cache = (second, text)
    return text


_bits = random.getrandbits


def request_id() -> str:
    """A random version-4 UUID string, several times cheaper than ``str(uuid.uuid4())``."""
    # Request ids need to be unique, not unpredictable: a PRNG is enough.
    h = f"{_bits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def is_text(content_type: str | None) -> bool:
    """True when a body of this type travels as a string rather than base64."""
    if not content_type:
        return False
    ctype = content_type.split(";", 1)[0].strip().lower()
    return ctype.startswith("text/") or ctype in _TEXT_TYPES or ctype.endswith(("+json", "+xml"))


def encode_body(body: bytes, content_type: str | None) -> tuple[str | None, bool]:
    """The event's ``(body, isBase64Encoded)``; None when there is no body."""
    if not body:
        return None, False
    if is_text(content_type):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True


def query_pairs(query: str) -> list[tuple[str, str]]:
    """``a=1&b&c=`` → ``[("a", "1"), ("b", ""), ("c", "")]``, still percent-encoded."""
    pairs = []
    for part in query.split("&"):
        if part:
            name, _, value = part.partition("=")
            pairs.append((name, value))
    return pairs


def _decode(text: str) -> str:
    # Percent-decoding only: '+' stays '+', as the shared conformance corpus pins down.
    return unquote(text) if "%" in text else text


def _grouped(pairs: list[tuple[str, str]], lower: bool) -> dict[str, list[str]]:
    # Groups by name as spelled (API Gateway keeps the client's spelling), or lower-cased.
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        if lower:
            name = name.lower()
        if name in out:
            out[name].append(value)
        else:
            out[name] = [value]
    return out


def _source_ip(request: Request) -> str:
    forwarded = request.header("x-forwarded-for")
    if forwarded:
        return forwarded.split(",", 1)[0].strip()
    return request.remote


def rest_v1(
    request: Request, source: EventSource, request_id: str, http_api: bool
) -> dict[str, Any]:
    """The API Gateway REST (``http_api`` False) or HTTP API 1.0 proxy event."""
    now_ms = int(request.received * 1000)
    headers = _grouped(request.headers, lower=False)
    mv_query: dict[str, list[str]] = {}
    if request.query:
        pairs = [(_decode(k), _decode(v)) for k, v in query_pairs(request.query)]
        mv_query = _grouped(pairs, lower=False)
    path = unquote(request.path) if "%" in request.path else request.path
    host = _domain(request.header("host"))
    resource = "/{proxy+}" if len(path) > 1 else "/"
    user_agent = request.header("user-agent")
    body, b64 = encode_body(request.body, request.header("content-type"))
    event: dict[str, Any] = {}
    if http_api:
        event["version"] = "1.0"
    event.update(
        {
            "resource": resource,
            "path": path,
            "httpMethod": request.method,
            "headers": {k: v for k, v in request.headers} or None,
            "multiValueHeaders": headers or None,
            "queryStringParameters": {k: v[-1] for k, v in mv_query.items()} or None,
            "multiValueQueryStringParameters": mv_query or None,
            "pathParameters": {"proxy": path[1:]} if len(path) > 1 else None,
            "stageVariables": None,
            "requestContext": {
                "accountId": source.account_id,
                "apiId": source.api_id,
                "resourceId": "proxy",
                "stage": source.stage,
                "requestId": request_id,
                "extendedRequestId": request_id,
                "identity": {
                    "cognitoIdentityPoolId": None,
                    "accountId": None,
                    "cognitoIdentityId": None,
                    "caller": None,
                    "apiKey": None,
                    "apiKeyId": None,
                    "accessKey": None,
                    "sourceIp": _source_ip(request),
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "userArn": None,
                    "userAgent": user_agent,
                    "user": None,
                    "principalOrgId": None,
                    "clientCert": None,
                },
                "resourcePath": resource,
                "httpMethod": request.method,
                "requestTime": clf_time(now_ms),
                "requestTimeEpoch": now_ms,
                "protocol": request.version,
                "path": path,
                "domainName": host,
                "domainPrefix": host.split(".", 1)[0],
                "authorizer": None,
            },
            "body": body,
            "isBase64Encoded": b64,
        }
    )
    return event


def http_v2(request: Request, source: EventSource, request_id: str) -> dict[str, Any]:
    """The API Gateway HTTP API 2.0 (and Lambda Function URL) event."""
    now_ms = int(request.received * 1000)
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        key = name.lower()
        if key == "cookie":
            # HTTP APIs move cookies out of the headers into their own list.
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    query: dict[str, str] = {}
    for name, value in query_pairs(request.query):
        key, val = _decode(name), _decode(value)
        query[key] = f"{query[key]},{val}" if key in query else val
    host = _domain(headers.get("host"))
    body, b64 = encode_body(request.body, headers.get("content-type"))
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": request.path,
        "rawQueryString": request.query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = {
        "accountId": source.account_id,
        "apiId": source.api_id,
        "domainName": host,
        "domainPrefix": host.split(".", 1)[0],
        "http": {
            "method": request.method,
            "path": unquote(request.path),
            "protocol": request.version,
            "sourceIp": _source_ip(request),
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": "$default",
        "stage": source.stage,
        "time": clf_time(now_ms),
        "timeEpoch": now_ms,
    }
    if body is not None:
        event["body"] = body
    event["isBase64Encoded"] = b64
    return event


def alb(request: Request, source: EventSource, multi: bool) -> dict[str, Any]:
    """The Application Load Balancer event, single- or multi-value."""
    body, b64 = encode_body(request.body, request.header("content-type"))
    event: dict[str, Any] = {
        "requestContext": {"elb": {"targetGroupArn": source.target_group_arn}},
        "httpMethod": request.method,
        "path": request.path,
    }
    # An ALB hands query strings over exactly as sent: no percent-decoding.
    pairs = query_pairs(request.query)
    if multi:
        mv_query: dict[str, list[str]] = {}
        for name, value in pairs:
            mv_query.setdefault(name, []).append(value)
        event["multiValueQueryStringParameters"] = mv_query
        event["multiValueHeaders"] = _grouped(request.headers, lower=True)
    else:
        event["queryStringParameters"] = dict(pairs)
        event["headers"] = {name.lower(): value for name, value in request.headers}
    event["body"] = body if body is not None else ""
    event["isBase64Encoded"] = b64
    return event


def build_event(
    http_format: str, request: Request, source: EventSource, request_id: str
) -> dict[str, Any]:
    """The event for ``request`` in ``http_format`` (apigw-v1, apigw-v2, alb, alb-multi)."""
    if http_format == "apigw-v2":
        return http_v2(request, source, request_id)
    if http_format == "alb":
        return alb(request, source, multi=False)
    if http_format == "alb-multi":
        return alb(request, source, multi=True)
    return rest_v1(request, source, request_id, http_api=False)


def _domain(host: str | None) -> str:
    """The ``Host`` header without its port (IPv6 literals keep their brackets)."""
    if not host:
        return "localhost"
    if host.startswith("["):
        return host[: host.find("]") + 1] or host
    return host.partition(":")[0]
