"""The ``httpd`` event type: every request becomes a Lambda HTTP event for the handler."""

from __future__ import annotations

import asyncio
import gc
from functools import partial

from . import cors, events, response
from .context import ContextFactory
from .events.ids import request_id as new_request_id
from .http11 import HttpServer, Reply, Request, Response, serve_until_signal
from .invoke import Invoker, Outcome
from .loader import Handler
from .log import log
from .settings import Settings

DEFAULT_TIMEOUT_MS = 30000
HEALTHY = b"Healthy!"
WEDGED = b"Unhealthy: every invocation slot is stuck past TIMEOUT"
# Young-generation collections at most once per this many net container allocations.
GC_GEN0_THRESHOLD = 10_000



class HttpdApp:
    """Answers health checks and CORS preflights itself and hands every other request over."""

    def __init__(self, settings: Settings, invoker: Invoker) -> None:
        self.settings = settings
        self.invoker = invoker
        self.http_format = settings.http_format
        self.timeout_s = invoker.timeout_s
        self.health_route = settings.health_route
        self.cors = settings.cors
        source = events.EventSource(
            stage=settings.stage or "$default",
            region=settings.region,
            function_name=settings.function_name,
        )
        self.build_event = events.EventBuilder(settings.http_format, source).build
        self.new_context = ContextFactory(settings)
        self.timeout_ms = int(self.timeout_s * 1000)

    def handle(self, request: Request, reply: Reply) -> None:
        """Answer one request (see http11.App)."""
        if request.path == self.health_route and request.method in ("GET", "HEAD"):
            # A load balancer replaces a target that fails its health check: say so once
            # every slot is held by a call past its deadline, since nothing can be answered.
            if self.invoker.wedged:
                reply(Response(503, [("Content-Type", "text/plain; charset=utf-8")], WEDGED))
            else:
                reply(Response(200, [("Content-Type", "text/plain; charset=utf-8")], HEALTHY))
            return
        if self.cors is not None and cors.is_preflight(request):
            reply(cors.preflight(self.cors, request))
            return
        request_id = new_request_id()
        event = self.build_event(request, request_id)
        context = self.new_context(request_id, int(request.received * 1000) + self.timeout_ms)

        # A partial, not a closure: calling it adds no Python frame of its own.
        self.invoker.invoke(event, context, partial(self._respond, request, request_id, reply))

    def _respond(self, request: Request, request_id: str, reply: Reply, outcome: Outcome) -> None:
        if outcome.timed_out:
            log(f"{request_id} Task timed out after {self.timeout_s:.2f} seconds")
            answer = response.timeout_response()
        elif outcome.error is not None:
            error = outcome.error
            trace = "\n".join(outcome.stack or [])
            log(f"[ERROR] {request_id} {type(error).__name__}: {error}\nTraceback:\n{trace}")
            answer = response.error_response(self.http_format)
        else:
            result = outcome.result
            try:
                if type(result) is dict and "statusCode" in result:
                    # The common case, without to_response()'s own dispatch.
                    answer = response.from_structured(result, self.http_format)
                else:
                    answer = response.to_response(result, self.http_format)
            except response.MalformedResult as exc:
                log(f"[ERROR] {request_id} Malformed Lambda proxy response: {exc}")
                answer = response.error_response(self.http_format)
        if self.cors is not None:
            cors.decorate(self.cors, request, answer)
        reply(answer)


def tune_gc() -> None:
    """Make the cyclic collector cheap for a request server; call once the handler is loaded."""
    # What exists now (the shim, the handler and its modules) lives until exit: frozen, it is
    # no longer rescanned by every full collection, which paused the loop for milliseconds.
    gc.freeze()
    # Request objects die by reference count, but the ones in flight kept the young
    # generation above the default threshold of 700, so a collection ran every few requests.
    gen0, gen1, gen2 = gc.get_threshold()
    if gen0:  # 0 means collection is off: leave it off
        gc.set_threshold(max(gen0, GC_GEN0_THRESHOLD), gen1, gen2)


async def serve(settings: Settings, handler: Handler) -> int:
    """Serve until SIGTERM or SIGINT, then drain in-flight requests and return 0."""
    tune_gc()
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
