"""A real Django app (in-process WSGI, no server) behind the WSGI middleware with the route
middleware: resolver routes become templates, errors are recorded."""

from __future__ import annotations

import io
import sys
import types

import pytest

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402

from valuetrace import Client, SamplingPolicy, WSGIMiddleware, set_error_type  # noqa: E402


def views_and_urls():
    from django.http import HttpResponse, JsonResponse
    from django.urls import include, path, re_path

    def item(request, pk):
        return JsonResponse({"id": pk})

    def invalid(request):
        set_error_type(request, "validation")
        return JsonResponse({"error": "bad"}, status=422)

    def boom(request):
        raise RuntimeError("boom")

    module = types.ModuleType("valuetrace_test_urls")
    module.urlpatterns = [
        path("api/", include([path("items/<int:pk>/", item)])),
        re_path(r"^legacy/(?P<pk>[0-9]+)/$", item),
        path("invalid/", invalid),
        path("boom/", boom),
        path("", lambda request: HttpResponse("home")),
    ]
    return module


@pytest.fixture(scope="module")
def application():
    if not settings.configured:
        settings.configure(
            DEBUG=False, ALLOWED_HOSTS=["*"], ROOT_URLCONF="valuetrace_test_urls",
            MIDDLEWARE=["valuetrace.django.RouteMiddleware"], SECRET_KEY="test",
            INSTALLED_APPS=[], LOGGING_CONFIG=None,
        )
        django.setup()
        sys.modules["valuetrace_test_urls"] = views_and_urls()
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


def call(app, path):
    environ = {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "SERVER_NAME": "test", "SERVER_PORT": "80",
        "wsgi.input": io.BytesIO(b""), "wsgi.url_scheme": "http", "wsgi.errors": io.StringIO(),
        "QUERY_STRING": "",
    }
    statuses = []
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    b"".join(body)
    body.close()
    return int(statuses[0][:3])


def test_django_routes_become_templates_and_errors_are_recorded(application):
    client = Client("http://127.0.0.1:9", "k", sampling=SamplingPolicy(default_weight=1.0),
                    start=False)
    app = WSGIMiddleware(application, client)
    assert [call(app, p) for p in ("/api/items/7/", "/legacy/8/", "/invalid/", "/boom/", "/nope/9/")] == [
        200, 200, 422, 500, 404]
    records = client.queue.take(100)
    assert [(r[2], r[3], r[8]) for r in records] == [
        ("/api/items/{pk}/", 200, None),
        ("/legacy/{pk}/", 200, None),
        ("/invalid/", 422, "validation"),
        ("/boom/", 500, "internal"),
        ("/(unmatched)", 404, None),
    ]
    client.shutdown(0.1)
