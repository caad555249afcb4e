"""The ``context`` argument, with the fields and methods awslambdaric gives handlers."""

from __future__ import annotations

import sys
import time
from typing import Any

from .settings import Settings

ACCOUNT_ID = "123456789012"


class Identity:
    """The Cognito identity of a mobile-SDK invocation (``context.identity``)."""

    def __init__(self, data: dict[str, Any] | None = None) -> None:
        data = data or {}
        self.cognito_identity_id: str | None = data.get("cognitoIdentityId")
        self.cognito_identity_pool_id: str | None = data.get("cognitoIdentityPoolId")


_NO_IDENTITY = Identity()


class ClientContext:
    """The mobile-SDK client context (``context.client_context``)."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.client: Any = data.get("client")
        self.custom: Any = data.get("custom")
        self.env: Any = data.get("env")


class LambdaContext:
    """What a Python handler receives as ``context``; its fields match awslambdaric's."""

    __slots__ = (
        "__dict__",  # handlers and middlewares sometimes attach their own attributes
        "_deadline_ms",
        "aws_request_id",
        "client_context",
        "function_name",
        "function_version",
        "identity",
        "invoked_function_arn",
        "log_group_name",
        "log_stream_name",
        "memory_limit_in_mb",
        "tenant_id",
    )

    def __init__(
        self,
        *,
        aws_request_id: str,
        deadline_ms: int,
        function_name: str,
        function_version: str = "$LATEST",
        invoked_function_arn: str,
        memory_limit_in_mb: str,
        log_group_name: str = "",
        log_stream_name: str = "",
        client_context: dict[str, Any] | None = None,
        identity: dict[str, Any] | None = None,
    ) -> None:
        self.aws_request_id = aws_request_id
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = invoked_function_arn
        # awslambdaric hands this over as the string it reads from the environment.
        self.memory_limit_in_mb = memory_limit_in_mb
        self.log_group_name = log_group_name
        self.log_stream_name = log_stream_name
        self.client_context = ClientContext(client_context) if client_context else None
        self.identity = Identity(identity) if identity else _NO_IDENTITY
        self.tenant_id: str | None = None
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before this invocation's deadline, never below zero."""
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, message: str) -> None:
        """Write ``message`` to the function's log, as awslambdaric's ``context.log`` does."""
        sys.stdout.write(message if message.endswith("\n") else message + "\n")
        sys.stdout.flush()

    def __repr__(self) -> str:
        return (
            f"LambdaContext(aws_request_id={self.aws_request_id!r}, "
            f"function_name={self.function_name!r}, "
            f"remaining_ms={self.get_remaining_time_in_millis()})"
        )


def function_arn(settings: Settings) -> str:
    """The ARN Lambda would report for this function in its region."""
    return f"arn:aws:lambda:{settings.region}:{ACCOUNT_ID}:function:{settings.function_name}"


def make_context(
    settings: Settings, request_id: str, deadline_ms: int, memory_default: str = "1024"
) -> LambdaContext:
    """A context for one local invocation (httpd, tasks, emulator) ending at ``deadline_ms``."""
    return LambdaContext(
        aws_request_id=request_id,
        deadline_ms=deadline_ms,
        function_name=settings.function_name,
        function_version=settings.function_version,
        invoked_function_arn=function_arn(settings),
        memory_limit_in_mb=settings.memory_mb or memory_default,
        log_group_name=settings.log_group_name,
        log_stream_name=settings.log_stream_name,
    )


_new_context = object.__new__


class ContextFactory:
    """Makes the contexts of one function's invocations, with the fixed fields computed once.

    ``LambdaContext(...)`` with keyword arguments costs about four times as much as filling
    the slots directly, and the HTTP path makes one per request.
    """

    def __init__(self, settings: Settings, memory_default: str = "1024") -> None:
        self._proto = make_context(settings, "", 0, memory_default)
        # Fail at start, not per request, if LambdaContext gains a slot not filled below.
        probe = self("", 0)
        for name in LambdaContext.__slots__:
            if name != "__dict__":
                getattr(probe, name)

    def __call__(self, request_id: str, deadline_ms: int) -> LambdaContext:
        """A context for one invocation ending at ``deadline_ms`` (epoch milliseconds)."""
        proto = self._proto
        ctx: LambdaContext = _new_context(LambdaContext)
        ctx.aws_request_id = request_id
        ctx._deadline_ms = deadline_ms
        ctx.function_name = proto.function_name
        ctx.function_version = proto.function_version
        ctx.invoked_function_arn = proto.invoked_function_arn
        ctx.memory_limit_in_mb = proto.memory_limit_in_mb
        ctx.log_group_name = proto.log_group_name
        ctx.log_stream_name = proto.log_stream_name
        ctx.client_context = None
        ctx.identity = _NO_IDENTITY
        ctx.tenant_id = None
        return ctx
