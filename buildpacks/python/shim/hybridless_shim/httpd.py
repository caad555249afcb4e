"""The ``httpd`` event type: every request becomes a Lambda HTTP event for the handler."""

from __future__ import annotations

import asyncio
import sys

from . import cors, events, response
from .context import make_context
from .http11 import HttpServer, Reply, Request, Response, serve_until_signal
from .invoke import Invoker, Outcome
from .loader import Handler
from .settings import Settings

DEFAULT_TIMEOUT_MS = 30000
HEALTHY = b"Healthy!"


def log(message: str) -> None:
    """One line on stderr, where the platform collects the container's log."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class HttpdApp:
    """Answers health checks and CORS preflights itself and hands every other request over."""

    def __init__(self, settings: Settings, invoker: Invoker) -> None:
        self.settings = settings
        self.invoker = invoker
        self.http_format = settings.http_format
        self.timeout_s = invoker.timeout_s
        self.health_route = settings.health_route
        self.cors = settings.cors
        self.source = events.EventSource(
            stage=settings.stage or "$default",
            region=settings.region,
            function_name=settings.function_name,
        )

    def handle(self, request: Request, reply: Reply) -> None:
        """Answer one request (see http11.App)."""
        if request.path == self.health_route and request.method in ("GET", "HEAD"):
            reply(Response(200, [("Content-Type", "text/plain; charset=utf-8")], HEALTHY))
            return
        if self.cors is not None and cors.is_preflight(request):
            reply(cors.preflight(self.cors, request))
            return
        request_id = events.request_id()
        event = events.build_event(self.http_format, request, self.source, request_id)
        deadline_ms = int(request.received * 1000 + self.timeout_s * 1000)
        context = make_context(self.settings, request_id, deadline_ms)

        def done(outcome: Outcome) -> None:
            reply(self._respond(outcome, request, request_id))

        self.invoker.invoke(event, context, done)

    def _respond(self, outcome: Outcome, request: Request, request_id: str) -> Response:
        if outcome.timed_out:
            log(f"{request_id} Task timed out after {self.timeout_s:.2f} seconds")
            result = response.timeout_response()
        elif outcome.error is not None:
            error = outcome.error
            trace = "\n".join(outcome.stack or [])
            log(f"[ERROR] {request_id} {type(error).__name__}: {error}\nTraceback:\n{trace}")
            result = response.error_response()
        else:
            try:
                result = response.to_response(outcome.result, self.http_format)
            except response.MalformedResult as exc:
                log(f"[ERROR] {request_id} Malformed Lambda proxy response: {exc}")
                result = response.error_response()
        if self.cors is not None:
            cors.decorate(self.cors, request, result)
        return result


async def serve(settings: Settings, handler: Handler) -> int:
    """Serve until SIGTERM or SIGINT, then drain in-flight requests and return 0."""
    timeout_s = (settings.timeout_ms or DEFAULT_TIMEOUT_MS) / 1000
    invoker = Invoker(handler, settings.concurrency, timeout_s)
    invoker.bind(asyncio.get_running_loop())
    server = HttpServer(HttpdApp(settings, invoker), body_limit=settings.body_limit)
    banner = (
        f"{handler.name} ({settings.http_format}, timeout {timeout_s:g}s, "
        f"concurrency {settings.concurrency})"
    )
    await serve_until_signal(server, settings.port, banner, grace=timeout_s + 1)
    invoker.shutdown()
    return 0
