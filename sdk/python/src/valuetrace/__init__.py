"""valuetrace client for Python: ASGI and WSGI middleware that count every request exactly
(aggregates), keep raw ``api_call`` events by business weight (the same sampling as the Rust
client), and ship both to a valuetrace server from a background thread.

    client = valuetrace.Client("http://127.0.0.1:7070", INGEST_KEY, service="shop")
    app.add_middleware(valuetrace.ASGIMiddleware, client=client)    # FastAPI / Starlette
    valuetrace.flask.instrument(app, client)                        # Flask
"""

from .asgi import ASGIMiddleware
from .client import Client
from .events import SDK, UNMATCHED_ROUTE, Identity, __version__
from .sampling import RouteWeight, SamplingPolicy, stable_hash
from .wsgi import WSGIMiddleware

ERROR_TYPE_KEY = "valuetrace.error_type"


def set_error_type(request_or_scope, error_type: str) -> None:
    """Names the error class of the current call (``validation``, ``auth``, ``rate_limited``,
    ``upstream_timeout``, ``upstream_error``, ``internal``, ``unknown`` or any 1–64 byte name).
    Takes a Starlette/FastAPI ``Request``, a Flask or Django request, an ASGI scope or a WSGI
    environ."""
    target = request_or_scope
    if not isinstance(target, dict):
        target = getattr(request_or_scope, "scope", None)
        if not isinstance(target, dict):
            target = getattr(request_or_scope, "environ", None)
    if isinstance(target, dict):
        target[ERROR_TYPE_KEY] = error_type


__all__ = [
    "ASGIMiddleware",
    "Client",
    "ERROR_TYPE_KEY",
    "Identity",
    "RouteWeight",
    "SDK",
    "SamplingPolicy",
    "UNMATCHED_ROUTE",
    "WSGIMiddleware",
    "__version__",
    "set_error_type",
    "stable_hash",
]
