"""Pure ASGI middleware: request metrics and the request body limit.

Pure ASGI (not Starlette's BaseHTTPMiddleware) keeps the per-request cost to a few function
calls and never buffers or re-wraps responses.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable

from fastapi import HTTPException, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from credit_api.metrics import UNMATCHED_ROUTE, Metrics

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetricsMiddleware:
    """Counts and times every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self.in_progress = metrics.requests_in_progress

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        in_progress = self.in_progress
        in_progress.value += 1
        start = time.perf_counter()
        status = 500  # what the client gets if the app raises before responding

        # A plain function handing back send's awaitable: no coroutine per message.
        def send_with_status(message: Message) -> Awaitable[None]:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            return send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            in_progress.value -= 1
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            # The matched route's path template, never the raw path (that is unbounded).
            path = getattr(scope.get("route"), "path", None)
            route = path if isinstance(path, str) else UNMATCHED_ROUTE
            self.metrics.observe_request(method, route, status, time.perf_counter() - start)


class BodyLimitMiddleware:
    """Refuses request bodies over `max_bytes` with 413, before anything parses them.

    The check sits in `receive`: a declared Content-Length over the limit fails the first
    read, a chunked body fails as soon as it passes the limit, so no oversized body is ever
    buffered. It raises HTTPException, which FastAPI's body reader passes on unchanged; the
    request has been routed by then, so its metrics carry the route template.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, metrics: Metrics | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            if declared is not None and declared > self.max_bytes:
                raise self._too_large()
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)

    def _too_large(self) -> HTTPException:
        if self.metrics is not None:
            self.metrics.errors.labels("body_too_large").inc()
        return HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"request body is larger than {self.max_bytes} bytes",
        )


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a header (`name` lower-case, as ASGI gives names), without building
    Starlette's Headers: the hot paths need one header each."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _content_length(scope: Scope) -> int | None:
    value = header(scope, b"content-length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
