"""Route templates from the frameworks' matched routes (never the raw path)."""

from __future__ import annotations

import re

from .events import UNMATCHED_ROUTE

#: The route of a Django ``re_path`` match with unnamed groups.
REGEX_ROUTE = "/(regex-route)"

_FLASK_PARAM = re.compile(r"<(?:[^<>:]+:)?([^<>:]+)>")
_DJANGO_NAMED_GROUP = re.compile(r"\(\?P<([^>]+)>[^)]*\)")
_cache: dict[str, str] = {}


def _remember(key: str, template: str) -> str:
    if len(_cache) > 4096:
        _cache.clear()
    _cache[key] = template
    return template


def flask_rule(rule: str) -> str:
    """``/items/<int:item_id>`` → ``/items/{item_id}`` (Werkzeug rule syntax)."""
    template = _cache.get(rule)
    if template is None:
        template = _remember(rule, _FLASK_PARAM.sub(r"{\1}", rule) or UNMATCHED_ROUTE)
    return template


def django_route(route: str) -> str:
    """A Django resolver match's route → ``/``-rooted template: ``api/items/<int:pk>/`` →
    ``/api/items/{pk}/``; a ``re_path`` pattern ``^api/items/(?P<pk>[0-9]+)/$`` →
    ``/api/items/{pk}/``."""
    key = "django:" + route
    template = _cache.get(key)
    if template is None:
        text = _DJANGO_NAMED_GROUP.sub(r"{\1}", route).lstrip("^").rstrip("$")
        text = _FLASK_PARAM.sub(r"{\1}", text)
        text = "/" + text.lstrip("/")
        if any(c in text for c in "?#()[]\\*+|"):
            text = REGEX_ROUTE  # an unnamed regex group: no template we can trust
        template = _remember(key, text)
    return template
