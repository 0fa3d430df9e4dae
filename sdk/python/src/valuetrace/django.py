"""Django support: add ``"valuetrace.django.RouteMiddleware"`` to ``MIDDLEWARE`` and wrap the
WSGI application with ``valuetrace.WSGIMiddleware`` (or the ASGI one with
``valuetrace.ASGIMiddleware``). The Django middleware writes the resolver match's route
(``api/items/<int:pk>/`` → ``/api/items/{pk}/``) where the outer middleware reads it
(``environ["valuetrace.route"]`` / ``scope["valuetrace.route"]``), and names a view's exception
``internal``; Django itself is not imported.
"""

from __future__ import annotations

from .routes import django_route

ROUTE_KEY = "valuetrace.route"
ERROR_TYPE_KEY = "valuetrace.error_type"


def _targets(request) -> list[dict]:
    found = []
    for name in ("environ", "scope"):
        target = getattr(request, name, None)
        if isinstance(target, dict):
            found.append(target)
    return found


class RouteMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        try:
            match = getattr(request, "resolver_match", None)
            route = getattr(match, "route", None) if match is not None else None
            if route:
                template = django_route(route)
                for target in _targets(request):
                    target[ROUTE_KEY] = template
        except Exception:
            pass
        return response

    def process_exception(self, request, exception) -> None:
        """A view's exception (Django answers 500): error class ``internal`` unless named."""
        try:
            for target in _targets(request):
                target.setdefault(ERROR_TYPE_KEY, "internal")
        except Exception:
            pass
