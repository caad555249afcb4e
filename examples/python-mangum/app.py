"""A Starlette app on Lambda events through Mangum, as many Python services are written."""

from __future__ import annotations

import asyncio
from typing import Any

from mangum import Mangum
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def hello(request: Request) -> JSONResponse:
    """Echo the query string: single values, repeated keys and the raw form."""
    return JSONResponse({
        "name": request.query_params.get("name", "world"),
        "tags": request.query_params.getlist("tag"),
        "path": request.url.path,
    })


async def headers(request: Request) -> JSONResponse:
    """Echo a repeated request header and answer with a repeated response header."""
    response = JSONResponse({"x-multi": request.headers.getlist("x-multi")})
    response.headers.append("x-reply", "one")
    response.headers.append("x-reply", "two")
    return response


async def cookies(request: Request) -> JSONResponse:
    """Echo the request's cookies and set two new ones."""
    response = JSONResponse({"cookies": dict(request.cookies)})
    response.set_cookie("session", "abc123", httponly=True)
    response.set_cookie("theme", "dark")
    return response


async def binary(request: Request) -> Response:
    """Return the request body's bytes reversed, as an opaque binary type."""
    body = await request.body()
    return Response(body[::-1], media_type="application/octet-stream")


async def fail(request: Request) -> Response:
    """An application error: Starlette and Mangum turn it into a 500."""
    raise RuntimeError("the app failed on purpose")


async def slow(request: Request) -> JSONResponse:
    """Sleep for ?seconds=N, to run past the function's timeout."""
    seconds = float(request.query_params.get("seconds", "1"))
    await asyncio.sleep(seconds)
    return JSONResponse({"slept": seconds})


app = Starlette(routes=[
    Route("/hello", hello),
    Route("/headers", headers),
    Route("/cookies", cookies),
    Route("/binary", binary, methods=["POST"]),
    Route("/fail", fail),
    Route("/slow", slow),
])
asgi = Mangum(app, lifespan="off")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda entry point; ``/crash`` fails before the app runs (a handler error)."""
    path = event.get("rawPath") or event.get("path") or ""
    if path == "/crash":
        raise ValueError("the handler failed before reaching the app")
    return asgi(event, context)
