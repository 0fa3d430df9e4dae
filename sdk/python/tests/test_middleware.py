"""The ASGI and WSGI middleware in-process (no network): what they record, that the app's
exceptions propagate unchanged, and that their own failures never reach the app."""

from __future__ import annotations

import asyncio

import pytest

import valuetrace
from valuetrace import ASGIMiddleware, Client, Identity, SamplingPolicy, WSGIMiddleware
from valuetrace.routes import django_route, flask_rule

KEEP_ALL = SamplingPolicy(default_weight=1.0)


@pytest.fixture
def client():
    c = Client("http://127.0.0.1:9", "k", service="t", sampling=KEEP_ALL, start=False)
    yield c
    c.shutdown(0.1)


def queued(client):
    return client.queue.take(10_000)


class Route:
    def __init__(self, path_format):
        self.path_format = path_format


def http_scope(path="/x", method="GET", **extra):
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": [
        (b"x-session", b"s-1")], **extra}


def run_asgi(app, scope, body=b"abc"):
    sent = []

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def asgi_app(status=200, route="/items/{id}", raise_error=None, error_type=None):
    async def app(scope, receive, send):
        await receive()
        if route is not None:
            scope["route"] = Route(route)
        if error_type:
            scope["valuetrace.error_type"] = error_type
        if raise_error:
            raise raise_error
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"hello", "more_body": True})
        await send({"type": "http.response.body", "body": b"!"})
    return app


def test_asgi_records_template_status_bytes_identity_and_error_type(client):
    mw = ASGIMiddleware(asgi_app(status=400, error_type="validation"), client,
                        identify=lambda scope: Identity(session_id="s-1", plan="pro"))
    sent = run_asgi(mw, http_scope("/items/42"))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body",
                                        "http.response.body"]
    (record,) = queued(client)
    _, method, route, status, latency_ms, request_bytes, response_bytes, who, error_type, rate = record
    assert (method, route, status) == ("GET", "/items/{id}", 400)
    assert (request_bytes, response_bytes) == (3, 6)
    assert who.session_id == "s-1" and error_type == "validation" and rate == 1.0
    assert 0 <= latency_ms < 1000


def test_asgi_unmatched_requests_never_carry_their_raw_path(client):
    run_asgi(ASGIMiddleware(asgi_app(status=404, route=None), client), http_scope("/secret/123"))
    assert queued(client)[0][2] == "/(unmatched)"


def test_asgi_mount_prefix_from_root_path(client):
    async def app(scope, receive, send):
        scope["root_path"] = scope["root_path"] + "/v2"
        scope["route"] = Route("/items/{id}")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    run_asgi(ASGIMiddleware(app, client), http_scope("/v2/items/3"))
    assert queued(client)[0][2] == "/v2/items/{id}"


def test_asgi_app_exceptions_propagate_unchanged_and_are_recorded_as_500(client):
    error = ValueError("the app's own")
    mw = ASGIMiddleware(asgi_app(raise_error=error), client)
    with pytest.raises(ValueError) as raised:
        run_asgi(mw, http_scope())
    assert raised.value is error
    record = queued(client)[0]
    assert record[3] == 500 and record[8] == "internal"


def test_asgi_bookkeeping_failures_are_swallowed_and_counted(client):
    def broken_identify(scope):
        raise KeyError("user code bug")

    mw = ASGIMiddleware(asgi_app(), client, identify=broken_identify,
                        route_extractor=lambda scope: 1 / 0)
    sent = run_asgi(mw, http_scope())
    assert sent[0]["status"] == 200
    assert client.stats()["internal_errors"] == 1  # the route extractor's (identify never ran)
    mw = ASGIMiddleware(asgi_app(), client, identify=broken_identify)
    run_asgi(mw, http_scope())
    assert client.stats()["internal_errors"] == 2
    assert queued(client)[0][7] is None  # recorded without an identity


def test_asgi_passes_other_scopes_through(client):
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    asyncio.run(ASGIMiddleware(app, client)({"type": "lifespan"}, None, None))
    asyncio.run(ASGIMiddleware(app, client)({"type": "websocket"}, None, None))
    assert seen == ["lifespan", "websocket"] and client.stats()["requests"] == 0


def test_record_never_raises_even_with_a_broken_queue(client):
    client.queue = None
    assert client.record("GET", "/a", 200, 1.0) is False
    assert client.stats is not None and client.internal_errors == 1


def wsgi_environ(path="/x", method="GET"):
    return {"REQUEST_METHOD": method, "PATH_INFO": path, "CONTENT_LENGTH": "3",
            "HTTP_X_SESSION": "s-1"}


def wsgi_app(environ, start_response):
    environ["valuetrace.route"] = "/items/{id}"
    start_response("201 Created", [("Content-Type", "text/plain")])
    return [b"ab", b"cde"]


def test_wsgi_records_on_close_with_lazily_counted_bytes(client):
    mw = WSGIMiddleware(wsgi_app, client,
                        identify=lambda environ: Identity(session_id=environ["HTTP_X_SESSION"]))
    statuses = []
    body = mw(wsgi_environ("/items/7"), lambda status, headers, exc_info=None: statuses.append(status))
    assert client.stats()["requests"] == 0, "nothing recorded before the body is sent"
    assert b"".join(body) == b"abcde"
    body.close()
    (record,) = queued(client)
    assert record[1:4] == ("GET", "/items/{id}", 201)
    assert record[5:7] == (3, 5) and record[7].session_id == "s-1"
    assert statuses == ["201 Created"]


def test_wsgi_app_exceptions_propagate_and_are_recorded_as_500(client):
    error = RuntimeError("boom")

    def app(environ, start_response):
        raise error

    with pytest.raises(RuntimeError) as raised:
        WSGIMiddleware(app, client)(wsgi_environ(), lambda *a: None)
    assert raised.value is error
    record = queued(client)[0]
    assert record[2:4] == ("/(unmatched)", 500) and record[8] == "internal"


def test_wsgi_error_type_from_the_environ(client):
    def app(environ, start_response):
        valuetrace.set_error_type(environ, "auth")
        start_response("403 Forbidden", [])
        return [b""]

    body = WSGIMiddleware(app, client)(wsgi_environ(), lambda *a: None)
    list(body)
    body.close()
    (record,) = queued(client)
    assert record[3] == 403 and record[8] == "auth"


def test_route_template_conversions():
    assert flask_rule("/items/<int:item_id>") == "/items/{item_id}"
    assert flask_rule("/a/<b>/c/<path:rest>") == "/a/{b}/c/{rest}"
    assert django_route("api/items/<int:pk>/") == "/api/items/{pk}/"
    assert django_route("^api/items/(?P<pk>[0-9]+)/$") == "/api/items/{pk}/"
    assert django_route("^api/(\\d+)/$") == "/(regex-route)"
    assert django_route("") == "/"
