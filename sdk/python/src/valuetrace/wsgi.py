"""WSGI middleware (Flask, Django, any WSGI app): wraps ``start_response`` to see the status and
the response iterable to count its bytes lazily; the call is recorded when the server closes the
iterable (the body fully sent).

Route: ``environ["valuetrace.route"]`` when set (by the app, ``valuetrace.flask.instrument``'s
hook or ``valuetrace.django.RouteMiddleware``), else the matched rule of a Werkzeug request still
in ``environ["werkzeug.request"]`` (plain Werkzeug apps; Flask clears it, hence the hook) in
``{name}`` form; requests that matched no route are
recorded as ``/(unmatched)``, never as their raw path. Pass ``route_extractor(environ) -> str`` to
decide yourself.

Error class: set ``environ["valuetrace.error_type"]`` (``valuetrace.set_error_type(request, ...)``)
in the app; an exception raised by the app is recorded as a 500 of class ``internal`` and
propagates unchanged.
"""

from __future__ import annotations

from time import perf_counter_ns
from typing import Any, Callable, Iterable

from .client import Client
from .events import UNMATCHED_ROUTE, Identity
from .routes import flask_rule

ERROR_TYPE_KEY = "valuetrace.error_type"
ROUTE_KEY = "valuetrace.route"


def werkzeug_route(environ: dict) -> str:
    """The route template of a Flask/Werkzeug request after the app ran."""
    explicit = environ.get(ROUTE_KEY)
    if explicit is not None:
        return explicit
    request = environ.get("werkzeug.request")
    rule = getattr(request, "url_rule", None) if request is not None else None
    text = getattr(rule, "rule", None) if rule is not None else None
    if not isinstance(text, str) or not text.startswith("/"):
        return UNMATCHED_ROUTE
    return flask_rule(text)


def _request_bytes(environ: dict) -> int | None:
    length = environ.get("CONTENT_LENGTH")
    if not length:
        return None
    try:
        return int(length)
    except ValueError:
        return None


class WSGIMiddleware:
    """``application = WSGIMiddleware(get_wsgi_application(), client, ...)`` (Django; Flask:
    ``valuetrace.flask.instrument(app, client, ...)``, which installs this middleware).

    ``identify(environ) -> Identity | None`` runs when the response is closed.
    """

    def __init__(self, app: Callable, client: Client,
                 identify: Callable[[dict], Identity | None] | None = None,
                 route_extractor: Callable[[dict], str] | None = None) -> None:
        self.app = app
        self.client = client
        self.identify = identify
        self.route_extractor = route_extractor

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = perf_counter_ns()
        status = [None]

        def tracked_start_response(status_line: str, headers: list, exc_info: Any = None):
            status[0] = status_line
            return start_response(status_line, headers, exc_info)

        try:
            result = self.app(environ, tracked_start_response)
        except Exception:
            self._record(environ, started, status[0], None, True)
            raise
        return _TrackedBody(self, result, environ, started, status)

    def _record(self, environ: dict, started: int, status_line: str | None,
                response_bytes: int | None, raised: bool) -> None:
        latency_ms = (perf_counter_ns() - started) / 1e6
        try:
            status = 500 if raised or not status_line else int(status_line[:3])
            if self.route_extractor is None:
                route = werkzeug_route(environ)
            else:
                route = self.route_extractor(environ) or UNMATCHED_ROUTE
            identity = None
            if self.identify is not None:
                try:
                    identity = self.identify(environ)
                except Exception:
                    self.client.count_internal_error()
            error_type = environ.get(ERROR_TYPE_KEY)
            if error_type is None and raised:
                error_type = "internal"
            self.client.record(environ["REQUEST_METHOD"], route, status, latency_ms, identity,
                               error_type, _request_bytes(environ), response_bytes)
        except Exception:
            self.client.count_internal_error()


class _TrackedBody:
    """The app's response iterable, counting bytes as the server pulls them; records on close."""

    __slots__ = ("_middleware", "_result", "_environ", "_started", "_status", "_bytes",
                 "_raised", "_recorded")

    def __init__(self, middleware: WSGIMiddleware, result: Iterable[bytes], environ: dict,
                 started: int, status: list) -> None:
        self._middleware = middleware
        self._result = result
        self._environ = environ
        self._started = started
        self._status = status
        self._bytes = 0
        self._raised = False
        self._recorded = False

    def __iter__(self):
        try:
            for chunk in self._result:
                self._bytes += len(chunk)
                yield chunk
        except Exception:
            self._raised = True
            raise

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            if not self._recorded:
                self._recorded = True
                self._middleware._record(self._environ, self._started, self._status[0],
                                         self._bytes, self._raised)
