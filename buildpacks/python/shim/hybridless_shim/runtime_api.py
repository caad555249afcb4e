"""The ``lambdaContainer`` event type on Lambda: a client of the Lambda Runtime API."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import time
from dataclasses import dataclass
from typing import Any

from .context import LambdaContext, function_arn
from .invoke import call_blocking
from .loader import Handler, HandlerLoadError
from .log import log
from .payloads import error_payload, format_stack, to_json
from .settings import Settings

API_VERSION = "2018-06-01"
DEFAULT_DEADLINE_MS = 900_000



class RuntimeApiError(Exception):
    """The Runtime API answered something a runtime cannot continue from."""


@dataclass(frozen=True)
class Invocation:
    """One event handed out by ``GET /runtime/invocation/next``."""

    request_id: str
    deadline_ms: int
    function_arn: str | None
    trace_id: str | None
    client_context: dict[str, Any] | None
    identity: dict[str, Any] | None
    body: bytes


def _json_header(value: str | None) -> dict[str, Any] | None:
    # Optional headers: absent, empty and unparsable all mean "none".
    if not value:
        return None
    try:
        data = json.loads(value)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class RuntimeApiClient:
    """Talks to ``http://$AWS_LAMBDA_RUNTIME_API/2018-06-01`` over one kept-alive connection."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        if not host:
            host, port = address, "80"
        self.host = host
        self.port = int(port)
        self._conn: http.client.HTTPConnection | None = None

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=None)
            try:
                self._conn.request(
                    method, f"/{API_VERSION}{path}", body=body, headers=headers or {}
                )
                resp = self._conn.getresponse()
                data = resp.read()
                return resp.status, resp.headers, data
            except (ConnectionError, http.client.HTTPException):
                self._conn.close()
                self._conn = None
                # A kept-alive connection the server dropped is retried once on a new one.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def next(self, default_timeout_ms: int) -> Invocation:
        """Block until Lambda hands over the next event."""
        status, headers, body = self._request("GET", "/runtime/invocation/next")
        if status != 200:
            raise RuntimeApiError(f"failed to get the next invocation: HTTP {status}")
        request_id = headers.get("Lambda-Runtime-Aws-Request-Id") or ""
        deadline_raw = headers.get("Lambda-Runtime-Deadline-Ms") or ""
        try:
            deadline = int(deadline_raw)
        except ValueError:
            deadline = int(time.time() * 1000) + default_timeout_ms
        return Invocation(
            request_id=request_id,
            deadline_ms=deadline,
            function_arn=headers.get("Lambda-Runtime-Invoked-Function-Arn") or None,
            trace_id=headers.get("Lambda-Runtime-Trace-Id") or None,
            client_context=_json_header(headers.get("Lambda-Runtime-Client-Context")),
            identity=_json_header(headers.get("Lambda-Runtime-Cognito-Identity")),
            body=body,
        )

    def post_response(self, request_id: str, payload: bytes) -> None:
        """Report a handler's result."""
        self._post(f"/runtime/invocation/{request_id}/response", payload, {})

    def post_error(self, request_id: str, payload: dict[str, Any], error_type: str) -> None:
        """Report a failed invocation in AWS's error format."""
        self._post(
            f"/runtime/invocation/{request_id}/error",
            to_json(payload).encode("utf-8"),
            {"Lambda-Runtime-Function-Error-Type": error_type},
        )

    def post_init_error(self, payload: dict[str, Any], error_type: str) -> None:
        """Report that the runtime could not start (the handler failed to import)."""
        self._post(
            "/runtime/init/error",
            to_json(payload).encode("utf-8"),
            {"Lambda-Runtime-Function-Error-Type": error_type},
        )

    def _post(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        headers = {"Content-Type": "application/json", **headers}
        status, _, data = self._request("POST", path, body, headers)
        if status >= 500:
            raise RuntimeApiError(f"the Runtime API failed on {path}: HTTP {status}")
        if status >= 400:
            # 413 (payload too large) and the like: the invocation is over, the loop goes on.
            log(f"the Runtime API refused {path}: HTTP {status} {data[:200]!r}")


def report_init_error(address: str, error: HandlerLoadError) -> None:
    """Tell Lambda why the runtime could not start."""
    payload = {
        "errorMessage": error.message,
        "errorType": error.error_type,
        "requestId": "",
        "stackTrace": error.stack,
    }
    try:
        RuntimeApiClient(address).post_init_error(payload, error.error_type)
    except (OSError, http.client.HTTPException, RuntimeApiError) as exc:
        log(f"failed to report the init error to the Runtime API: {exc}")


def _invoke_one(
    client: RuntimeApiClient,
    settings: Settings,
    handler: Handler,
    inv: Invocation,
    loop: asyncio.AbstractEventLoop,
) -> None:
    if inv.trace_id:
        os.environ["_X_AMZN_TRACE_ID"] = inv.trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    context = LambdaContext(
        aws_request_id=inv.request_id,
        deadline_ms=inv.deadline_ms,
        function_name=settings.function_name,
        function_version=settings.function_version,
        invoked_function_arn=inv.function_arn or function_arn(settings),
        memory_limit_in_mb=settings.memory_mb or "128",
        log_group_name=settings.log_group_name,
        log_stream_name=settings.log_stream_name,
        client_context=inv.client_context,
        identity=inv.identity,
    )
    try:
        event = json.loads(inv.body) if inv.body.strip() else {}
    except ValueError as exc:
        payload = {
            "errorMessage": f"Unable to parse the event: {exc}",
            "errorType": "Runtime.UnmarshalError",
            "requestId": inv.request_id,
            "stackTrace": [],
        }
        client.post_error(inv.request_id, payload, "Runtime.UnmarshalError")
        return
    try:
        result = call_blocking(handler, event, context, loop)
    except Exception as exc:
        payload = error_payload(exc, format_stack(exc))
        payload["requestId"] = inv.request_id
        log(f"[ERROR] {payload['errorType']}: {payload['errorMessage']}")
        for frame in payload["stackTrace"]:
            log(frame)
        client.post_error(inv.request_id, payload, "Unhandled")
        return
    try:
        body = to_json(result).encode("utf-8")
    except (TypeError, ValueError) as exc:
        payload = {
            "errorMessage": f"Unable to marshal response: {exc}",
            "errorType": "Runtime.MarshalError",
            "requestId": inv.request_id,
            "stackTrace": [],
        }
        client.post_error(inv.request_id, payload, "Runtime.MarshalError")
        return
    client.post_response(inv.request_id, body)


def run_runtime_api(settings: Settings, handler: Handler) -> int:
    """Serve invocations from the Runtime API until it goes away."""
    assert settings.runtime_api is not None
    client = RuntimeApiClient(settings.runtime_api)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    default_ms = settings.timeout_ms or DEFAULT_DEADLINE_MS
    try:
        while True:
            inv = client.next(default_ms)
            _invoke_one(client, settings, handler, inv, loop)
    except (OSError, http.client.HTTPException, RuntimeApiError) as exc:
        log(f"hybridless shim: the Runtime API is gone ({exc}); exiting")
        return 1
    finally:
        loop.close()
