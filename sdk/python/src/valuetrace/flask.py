"""Flask support: ``valuetrace.flask.instrument(app, client, identify=...)`` wraps
``app.wsgi_app`` with the WSGI middleware and adds a ``teardown_request`` hook that writes the
matched rule (``/items/<int:item_id>`` → ``/items/{item_id}``) to ``environ["valuetrace.route"]``
and names a view's exception ``internal``. The hook is needed because Flask drops its request
object from the environ when the request context ends, before the middleware records the call.
Flask itself is not imported."""

from __future__ import annotations

from typing import Callable

from .client import Client
from .events import Identity
from .routes import flask_rule
from .wsgi import ERROR_TYPE_KEY, ROUTE_KEY, WSGIMiddleware


def instrument(app, client: Client, identify: Callable[[dict], Identity | None] | None = None,
               route_extractor: Callable[[dict], str] | None = None) -> WSGIMiddleware:
    """Instruments a Flask ``app`` in place; returns the middleware it installed."""
    middleware = WSGIMiddleware(app.wsgi_app, client, identify=identify,
                                route_extractor=route_extractor)
    app.wsgi_app = middleware

    def remember_route(exc: BaseException | None) -> None:
        try:
            from flask import request

            environ = request.environ
            rule = request.url_rule
            if rule is not None and environ.get(ROUTE_KEY) is None:
                environ[ROUTE_KEY] = flask_rule(rule.rule)
            if exc is not None:
                environ.setdefault(ERROR_TYPE_KEY, "internal")
        except Exception:
            client.count_internal_error()

    app.teardown_request(remember_route)
    return middleware
