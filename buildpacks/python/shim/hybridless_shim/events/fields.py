"""What several event formats share: the source, times, bodies, queries, paths, hosts, addresses."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from urllib.parse import unquote, unquote_plus

from ..http11 import Request

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


# The last (second, text) clf_time made. apigw_v1 reads it inline, so it is replaced as a
# whole, never changed in place.
clf_last: tuple[int, str] = (-1, "")


def clf_time(epoch_ms: int) -> str:
    """``dd/Mon/yyyy:HH:mm:ss +0000``, the time format of ``requestContext.requestTime``."""
    global clf_last
    second = epoch_ms // 1000
    if clf_last[0] == second:
        return clf_last[1]
    t = time.gmtime(second)
    text = (
        f"{t.tm_mday:02d}/{_MONTHS[t.tm_mon - 1]}/{t.tm_year}:"
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000"
    )
    clf_last = (second, text)
    return text


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


def decode(text: str) -> str:
    """Percent-decodes a query key or value as HTTP APIs do: '+' stays a plus."""
    # aws/aws-lambda-dotnet#721
    return unquote(text) if "%" in text else text


def decode_form(text: str) -> str:
    """Decodes a query key or value as REST APIs do, as a form: '+' is a space, '%2B' a plus."""
    # As AWS-validated recordings show (LocalStack's test_lambda_aws_proxy_integration snapshot).
    return unquote_plus(text) if "%" in text or "+" in text else text


def multi(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Values grouped by name as spelled, in first-seen order."""
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        if name in out:
            out[name].append(value)
        else:
            out[name] = [value]
    return out


def http_api_path(raw_path: str) -> str:
    """The path an HTTP API hands over: percent-decoded once, cut at a decoded ``?``."""
    if "%" not in raw_path:
        return raw_path
    # Live captures (hotsock/voker#8) show rawPath decoded once, and a decoded '?' ending it.
    return unquote(raw_path).partition("?")[0]


def source_ip(request: Request) -> str:
    """The first address of ``X-Forwarded-For``, else the peer's."""
    forwarded = request.hmap.get("x-forwarded-for")
    if forwarded:
        return forwarded.split(",", 1)[0].strip()
    return request.remote


# Host header → (domainName, domainPrefix). apigw_v1 reads it inline before calling
# domain_parts, so it is cleared in place, never replaced.
domains: dict[str | None, tuple[str, str]] = {}


def domain_parts(host: str | None) -> tuple[str, str]:
    """``(domainName, domainPrefix)`` for a ``Host`` header, memoized: clients send few hosts."""
    parts = domains.get(host)
    if parts is None:
        name = _domain(host)
        parts = (name, name.partition(".")[0])
        if len(domains) >= 256:
            domains.clear()  # bound the memo against clients that invent hosts
        domains[host] = parts
    return parts


def _domain(host: str | None) -> str:
    """The ``Host`` header without its port (IPv6 literals keep their brackets)."""
    if not host:
        return "localhost"
    if host.startswith("["):
        return host[: host.find("]") + 1] or host
    return host.partition(":")[0]
