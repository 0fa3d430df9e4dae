"""Pure ASGI middleware (FastAPI, Starlette, any ASGI app): wraps ``send`` to see the status and
count the response bytes, wraps ``receive`` to count the request bytes, and records the call
when the app returns. Only ``http`` scopes are recorded; ``websocket`` and ``lifespan`` pass
through untouched.

Route: the matched route's template from ``scope["route"]`` after the app ran (Starlette/FastAPI
set it: its ``path_format``, prefixed by the mounts' ``root_path``), or ``scope["valuetrace.route"]``
when the app (or ``valuetrace.django.RouteMiddleware``) set one; requests that matched no route
are recorded as ``/(unmatched)``, never as their raw path. Pass ``route_extractor(scope) -> str``
to decide yourself.

Error class: set ``scope["valuetrace.error_type"]`` (``valuetrace.set_error_type(request, ...)``)
in the app; an exception raised by the app is recorded as a 500 of class ``internal`` and
propagates unchanged.
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import Any, Callable

from .client import Client
from .events import UNMATCHED_ROUTE, Identity

ERROR_TYPE_KEY = "valuetrace.error_type"
ROUTE_KEY = "valuetrace.route"


def header(scope: dict, name: str) -> str | None:
    """The first value of request header ``name`` (lower-case) in an ASGI scope, decoded."""
    wanted = name.lower().encode("latin-1")
    for key, value in scope.get("headers") or ():
        if key == wanted:
            return value.decode("latin-1")
    return None


def starlette_route(scope: dict, root_path: str) -> str:
    """The route template of a Starlette/FastAPI request after the app ran."""
    explicit = scope.get(ROUTE_KEY)
    if explicit is not None:
        return explicit
    route = scope.get("route")
    if route is None:
        return UNMATCHED_ROUTE
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(path, str) or not path.startswith("/"):
        return UNMATCHED_ROUTE
    if hasattr(route, "routes"):  # a Mount (or Host) was the last match: its own template
        return path
    inner_root = scope.get("root_path", "")
    if inner_root != root_path and inner_root.startswith(root_path):
        path = inner_root[len(root_path):] + path
    return path


class ASGIMiddleware:
    """``app = ASGIMiddleware(app, client, identify=...)`` or, with FastAPI/Starlette,
    ``app.add_middleware(ASGIMiddleware, client=client, identify=...)``.

    ``identify(scope) -> Identity | None`` runs after the app, so it can read what the app put in
    ``scope["state"]`` (``request.state``) as well as the headers.
    """

    def __init__(self, app: Any, client: Client,
                 identify: Callable[[dict], Identity | None] | None = None,
                 route_extractor: Callable[[dict], str] | None = None) -> None:
        self.app = app
        self.client = client
        self.identify = identify
        self.route_extractor = route_extractor

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = perf_counter_ns()
        root_path = scope.get("root_path", "")
        # [status, response bytes, request bytes]
        seen = [0, 0, 0]

        async def counted_send(message: dict) -> None:
            try:
                if message["type"] == "http.response.body":
                    seen[1] += len(message.get("body", b""))
                elif message["type"] == "http.response.start":
                    seen[0] = message["status"]
            except Exception:
                self.client.count_internal_error()
            await send(message)

        async def counted_receive() -> dict:
            message = await receive()
            try:
                if message["type"] == "http.request":
                    seen[2] += len(message.get("body", b""))
            except Exception:
                self.client.count_internal_error()
            return message

        try:
            await self.app(scope, counted_receive, counted_send)
        except Exception:
            self._record(scope, root_path, started, seen, True)
            raise
        self._record(scope, root_path, started, seen, False)

    def _record(self, scope: dict, root_path: str, started: int, seen: list, raised: bool) -> None:
        latency_ms = (perf_counter_ns() - started) / 1e6
        try:
            status = 500 if raised else seen[0] or 500
            if self.route_extractor is None:
                route = starlette_route(scope, root_path)
            else:
                route = self.route_extractor(scope) or UNMATCHED_ROUTE
            identity = None
            if self.identify is not None:
                try:
                    identity = self.identify(scope)
                except Exception:
                    self.client.count_internal_error()
            error_type = scope.get(ERROR_TYPE_KEY)
            if error_type is None and raised:
                error_type = "internal"
            self.client.record(scope["method"], route, status, latency_ms, identity, error_type,
                               seen[2], seen[1])
        except Exception:
            self.client.count_internal_error()
