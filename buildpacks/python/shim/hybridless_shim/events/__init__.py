"""Turns an HTTP request into the event API Gateway (REST v1, HTTP API v2) or an ALB would send.

One module per format (``apigw_v1``, ``apigw_v2``, ``alb``), over shared ``fields``,
``headers`` and request ``ids``; the Node.js shim's ``events/`` has the same modules.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..http11 import Request
from .alb import Alb
from .apigw_v1 import RestV1
from .apigw_v2 import HttpV2
from .fields import EventSource
from .ids import request_id

__all__ = ["EventBuilder", "EventSource", "request_id"]


class EventBuilder:
    """Builds the event of one format for one source; holds the per-process templates."""

    # The builder of the configured format, bound once: ``build(request, request_id)``.
    build: Callable[[Request, str], dict[str, Any]]

    def __init__(self, http_format: str, source: EventSource) -> None:
        self.http_format = http_format
        self.source = source
        if http_format == "apigw-v2":
            self.build = HttpV2(source).build
        elif http_format in ("alb", "alb-multi"):
            self.build = Alb(source, multi_value=http_format == "alb-multi").build
        else:
            self.build = RestV1(source).build
