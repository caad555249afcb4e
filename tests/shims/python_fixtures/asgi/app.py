"""A Starlette app served through Mangum, as users wrap ASGI apps for Lambda."""

from __future__ import annotations

import asyncio

from mangum import Mangum
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


async def inspect(request: Request) -> JSONResponse:
    """Report what the app saw of the request."""
    return JSONResponse(
        {
            "path": request.url.path,
            "q": request.query_params.get("q"),
            "a": request.query_params.getlist("a"),
            "dup": request.headers.getlist("x-dup"),
            "cookies": dict(request.cookies),
        }
    )


async def binary(request: Request) -> Response:
    """Answer the request body reversed, as bytes."""
    body = await request.body()
    return Response(body[::-1], media_type="application/octet-stream")


async def created(request: Request) -> JSONResponse:
    """Answer 201 with the JSON body it got."""
    return JSONResponse({"created": await request.json()}, status_code=201)


async def cookies(request: Request) -> Response:
    """Set two cookies."""
    response = Response("cookies set", media_type="text/plain")
    response.set_cookie("a", "1")
    response.set_cookie("b", "2")
    return response


async def boom(request: Request) -> Response:
    """Fail."""
    raise RuntimeError("the app failed")


async def slow(request: Request) -> Response:
    """Outlast the function timeout."""
    await asyncio.sleep(5)
    return Response("too late")


app = Starlette(
    routes=[
        Route("/inspect", inspect),
        Route("/binary", binary, methods=["POST"]),
        Route("/created", created, methods=["POST"]),
        Route("/cookies", cookies),
        Route("/boom", boom),
        Route("/slow", slow),
    ]
)
handler = Mangum(app, lifespan="off")
