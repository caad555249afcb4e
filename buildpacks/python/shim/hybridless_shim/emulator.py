"""The ``lambdaContainer`` event type off Lambda: the local invoke endpoint AWS base images serve.

``POST /2015-03-31/functions/function/invocations`` with the event as the body, as in
``docker run -p 9000:8080 IMG`` then ``curl -XPOST localhost:9000/2015-03-31/...``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

from .context import make_context
from .http11 import HttpServer, Reply, Request, Response, serve_until_signal
from .invoke import Invoker, Outcome
from .loader import Handler
from .log import log
from .payloads import error_payload, to_json
from .settings import Settings

PATH_PREFIX = "/2015-03-31/functions/"
PATH_SUFFIX = "/invocations"
DEFAULT_TIMEOUT_S = 300
DEFAULT_MEMORY = "3008"
JSON_HEADERS = [("Content-Type", "application/json")]



def emulator_timeout_s(settings: Settings) -> float:
    """``AWS_LAMBDA_FUNCTION_TIMEOUT`` (s), else ``TIMEOUT`` (ms), else the emulator's 300 s."""
    if settings.emulator_timeout_s:
        return float(settings.emulator_timeout_s)
    if settings.timeout_ms:
        return settings.timeout_ms / 1000
    return float(DEFAULT_TIMEOUT_S)


class EmulatorApp:
    """Runs one invocation per request, one at a time, like a single Lambda environment."""

    def __init__(self, settings: Settings, invoker: Invoker) -> None:
        self.settings = settings
        self.invoker = invoker
        self.timeout_s = invoker.timeout_s

    def handle(self, request: Request, reply: Reply) -> None:
        """Answer one request (see http11.App)."""
        path = request.path
        if not (path.startswith(PATH_PREFIX) and path.endswith(PATH_SUFFIX)):
            reply(Response(404, JSON_HEADERS[:], b'{"message":"Not Found"}'))
            return
        if request.method != "POST":
            reply(Response(405, JSON_HEADERS[:], b'{"message":"Method Not Allowed"}'))
            return
        request_id = str(uuid.uuid4())
        try:
            event = json.loads(request.body) if request.body.strip() else {}
        except ValueError as exc:
            body = to_json(
                {
                    "errorMessage": f"Unable to parse the event: {exc}",
                    "errorType": "Runtime.UnmarshalError",
                    "requestId": request_id,
                }
            )
            reply(self._error(body))
            return
        deadline_ms = int(time.time() * 1000 + self.timeout_s * 1000)
        context = make_context(self.settings, request_id, deadline_ms, DEFAULT_MEMORY)
        started = time.monotonic()

        def done(outcome: Outcome) -> None:
            elapsed_ms = (time.monotonic() - started) * 1000
            log(f"END RequestId: {request_id}")
            log(f"REPORT RequestId: {request_id}\tDuration: {elapsed_ms:.2f} ms")
            reply(self._respond(outcome, request_id))

        log(f"START RequestId: {request_id} Version: {self.settings.function_version}")
        self.invoker.invoke(event, context, done)

    def _error(self, body: str) -> Response:
        headers = [*JSON_HEADERS, ("X-Amz-Function-Error", "Unhandled")]
        return Response(200, headers, body.encode("utf-8"))

    def _respond(self, outcome: Outcome, request_id: str) -> Response:
        if outcome.timed_out:
            message = f"Task timed out after {self.timeout_s:.2f} seconds"
            log(f"{request_id} {message}")
            return self._error(to_json({"errorMessage": message, "errorType": "Sandbox.Timedout"}))
        if outcome.error is not None:
            payload = error_payload(outcome.error, outcome.stack)
            payload["requestId"] = request_id
            log(f"[ERROR] {payload['errorType']}: {payload['errorMessage']}")
            for frame in payload["stackTrace"]:
                log(frame)
            return self._error(to_json(payload))
        try:
            body = to_json(outcome.result)
        except (TypeError, ValueError) as exc:
            payload = {
                "errorMessage": f"Unable to marshal response: {exc}",
                "errorType": "Runtime.MarshalError",
                "requestId": request_id,
            }
            return self._error(to_json(payload))
        return Response(200, JSON_HEADERS[:], body.encode("utf-8"))


async def serve(settings: Settings, handler: Handler) -> int:
    """Serve the local invoke endpoint until SIGTERM or SIGINT, then drain and return 0."""
    timeout_s = emulator_timeout_s(settings)
    # One invocation at a time: a Lambda execution environment never runs two at once.
    invoker = Invoker(handler, 1, timeout_s)
    invoker.bind(asyncio.get_running_loop())
    server = HttpServer(EmulatorApp(settings, invoker), body_limit=settings.body_limit)
    banner = f"Lambda emulator for {handler.name}: POST {PATH_PREFIX}function{PATH_SUFFIX}"
    await serve_until_signal(server, settings.port, banner, grace=timeout_s + 1)
    invoker.shutdown()
    return 0
