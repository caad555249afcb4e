"""Turns a handler's result into the HTTP response API Gateway or an ALB would send."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from .http11 import Response, is_token
from .payloads import to_json

JSON_TYPE = "application/json"
ERROR_BODY = b'{"message":"Internal server error"}'
TIMEOUT_BODY = b'{"message":"Endpoint request timed out"}'
TOO_LARGE_BODY = b'{"message":"Request Entity Too Large"}'
# What an ALB itself answers when its Lambda target fails: a small HTML page, not JSON.
ALB_ERROR_BODY = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


_new_response = object.__new__


class MalformedResult(ValueError):
    """The handler returned something the front end cannot turn into a response."""


def error_response(http_format: str = "apigw-v1") -> Response:
    """The 502 API Gateway (or an ALB) sends when the handler throws or answers nonsense."""
    if http_format == "alb" or http_format == "alb-multi":
        return Response(502, [("Content-Type", "text/html")], ALB_ERROR_BODY)
    return Response(502, [("Content-Type", JSON_TYPE)], ERROR_BODY)


def too_large_response() -> Response:
    """The 413 API Gateway sends for a body over the limit, without calling the handler."""
    return Response(413, [("Content-Type", JSON_TYPE)], TOO_LARGE_BODY)


def timeout_response() -> Response:
    """The 504 API Gateway sends when the handler runs past its timeout."""
    return Response(504, [("Content-Type", JSON_TYPE)], TIMEOUT_BODY)


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    raise MalformedResult(f"header value {value!r} is not a string")


def _checked(headers: list[tuple[Any, str]]) -> list[tuple[str, str]]:
    """``headers`` unchanged, once every name is a token and no value can split the head."""
    for name, value in headers:
        # RFC 9110 §5.6.2 and §5.5: a name that is not a token, or a value with CR, LF or NUL,
        # would let a handler write header lines of its choosing (a Set-Cookie, a second
        # response): the whole response is refused, not repaired.
        if type(name) is not str or not is_token(name):
            raise MalformedResult(f"header name {name!r} is not an HTTP token")
        if "\r" in value or "\n" in value or "\x00" in value:
            raise MalformedResult(f"header {name!r} has a CR, LF or NUL in its value")
    return headers


def _headers(result: dict[str, Any]) -> list[tuple[str, str]]:
    single = result.get("headers")
    multi = result.get("multiValueHeaders")
    if single is None:
        single = {}
    elif not isinstance(single, dict):
        raise MalformedResult("headers must be an object")
    if not multi:
        if multi is not None and not isinstance(multi, dict):
            raise MalformedResult("multiValueHeaders must be an object")
        return _checked([(k, v if type(v) is str else _text(v)) for k, v in single.items()])
    if not isinstance(multi, dict):
        raise MalformedResult("multiValueHeaders must be an object")
    out: list[tuple[str, str]] = []
    merged: dict[str, list[str]] = {}
    for name, values in multi.items():
        if not isinstance(values, list):
            raise MalformedResult(f"multiValueHeaders.{name} must be a list")
        if type(name) is not str:
            raise MalformedResult(f"header name {name!r} is not an HTTP token")
        texts = [_text(v) for v in values]
        merged[name.lower()] = texts
        out.extend((name, t) for t in texts)
    for name, value in single.items():
        text = _text(value)
        if type(name) is not str:
            raise MalformedResult(f"header name {name!r} is not an HTTP token")
        # Both name it: the list, plus the single value unless the list already has it.
        if text not in merged.get(name.lower(), ()):
            out.append((name, text))
    return _checked(out)


def _body(result: dict[str, Any]) -> bytes:
    body = result.get("body")
    if body is None:
        return b""
    if not isinstance(body, str):
        raise MalformedResult(f"body must be a string, got {type(body).__name__}")
    if result.get("isBase64Encoded"):
        try:
            return base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedResult("isBase64Encoded is true but body is not base64") from None
    return body.encode("utf-8")


def _has_type(headers: list[tuple[str, str]]) -> bool:
    for name, _ in headers:
        if name.lower() == "content-type":
            return True
    return False


def from_structured(result: dict[str, Any], http_format: str) -> Response:
    """A response from a ``{statusCode, headers, multiValueHeaders, body, ...}`` result."""
    status = result.get("statusCode")
    if type(status) is not int or not 100 <= status <= 599:
        raise MalformedResult(f"statusCode {status!r} is not an integer HTTP status")
    single = result.get("headers")
    typed = False
    if type(single) is dict and result.get("multiValueHeaders") is None:
        # The common shape, one string per name, without the general merge below.
        headers = _checked([(k, v if type(v) is str else _text(v)) for k, v in single.items()])
        # The usual spellings, looked up by hash; any other casing falls back to a scan.
        typed = "Content-Type" in single or "content-type" in single
    else:
        headers = _headers(result)
    body = result.get("body")
    if type(body) is str and not result.get("isBase64Encoded"):
        data = body.encode("utf-8")
    else:
        data = _body(result)
    if http_format == "alb" or http_format == "alb-multi":
        reason = None
        description = result.get("statusDescription")
        if isinstance(description, str):
            if "\r" in description or "\n" in description or "\x00" in description:
                # It becomes the status line's reason phrase (RFC 9112 §4).
                raise MalformedResult("statusDescription has a CR, LF or NUL")
            code, _, text = description.partition(" ")
            reason = text if code == str(status) and text else None
        return Response(status, headers, data, reason)
    if http_format == "apigw-v2":
        cookies = result.get("cookies")
        if cookies:
            if not isinstance(cookies, list):
                raise MalformedResult("cookies must be a list of strings")
            headers.extend(_checked([("Set-Cookie", _text(c)) for c in cookies]))
    if data and not typed and not _has_type(headers):
        headers.append(("Content-Type", JSON_TYPE))
    # Filled directly rather than through __init__: this runs once per answered request.
    answer: Response = _new_response(Response)
    answer.status = status
    answer.headers = headers
    answer.body = data
    answer.reason = None
    return answer


def to_response(result: Any, http_format: str) -> Response:
    """The response for ``result`` in ``http_format``; raises MalformedResult if there is none."""
    if isinstance(result, dict) and "statusCode" in result:
        return from_structured(result, http_format)
    if http_format == "apigw-v2":
        # HTTP APIs send any other result as a 200 JSON answer: a string as it is (AWS's
        # guide turns "Hello from Lambda!" into that body, unquoted), the rest as JSON text.
        if isinstance(result, str):
            try:
                text = result.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise MalformedResult(f"the result string is not UTF-8 text: {exc}") from None
            return Response(200, [("Content-Type", JSON_TYPE)], text)
        try:
            body = to_json(result).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise MalformedResult(f"result is not JSON-serializable: {exc}") from None
        return Response(200, [("Content-Type", JSON_TYPE)], body)
    if result is None:
        raise MalformedResult("the handler returned no response")
    raise MalformedResult(f"the result has no statusCode: {str(result)[:200]}")
