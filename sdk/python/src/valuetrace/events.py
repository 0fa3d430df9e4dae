"""Who made a request, and the wire form of what the client sends (``docs/events.md``): the
``api_call`` events built from sampled records and the ``api_aggregate`` events built from the
aggregates. Building happens on the sender thread, never on the request path."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

from . import users

__version__ = "0.1.0"
SDK = f"valuetrace-python/{__version__}"
#: The route of requests that matched no route of the app (never their raw path).
UNMATCHED_ROUTE = "/(unmatched)"


@dataclass(slots=True)
class Identity:
    """Who made the request, as the host knows it (returned by the ``identify`` callable)."""

    user_id: str | None = None
    account_id: str | None = None
    session_id: str | None = None
    plan: str | None = None
    segment: str | None = None
    experiments: dict[str, str] | None = None
    #: The user is in its first days (sampled ``new_user_multiplier`` times as often).
    new_user: bool = False


def rfc3339(epoch_seconds: float) -> str:
    """``2026-11-21T10:15:30.123Z``."""
    ms = int(epoch_seconds * 1000)
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


# A sampled call on its way to the sender: a plain tuple (cheapest to build on the request path).
# (timestamp s, method, route, status, latency ms, request bytes, response bytes, identity,
#  error type, sample rate)
def api_call(record: tuple, service: str, sdk: str, aggregated: bool = False) -> dict:
    """The ``api_call`` event of a record; ``aggregated``: the call is also counted in an
    ``api_aggregate`` the server accepted (its health answers then count it from there)."""
    (timestamp, method, route, status, latency_ms, request_bytes, response_bytes, who,
     error_type, rate) = record
    event = {
        "type": "api_call",
        "schema_version": 1,
        "event_id": uuid.uuid4().hex,
        "timestamp": rfc3339(timestamp),
        "service": service,
        "method": method,
        "route": route,
        "status": status,
        "latency_ms": round(latency_ms, 3),
        "sdk": sdk,
    }
    if request_bytes is not None:
        event["request_bytes"] = request_bytes
    if response_bytes is not None:
        event["response_bytes"] = response_bytes
    if who is not None:
        for name in ("user_id", "account_id", "session_id", "plan", "segment"):
            value = getattr(who, name)
            if value is not None:
                event[name] = value
        if who.experiments:
            event["experiments"] = dict(who.experiments)
    if error_type is not None:
        event["error_type"] = error_type
    if rate < 1.0:
        event["sample_rate"] = rate
    if aggregated:
        event["aggregated"] = True
    return event


def api_aggregates(window_start: float, window_end: float, table: dict, service: str,
                   sdk: str) -> list[dict]:
    """One ``api_aggregate`` event per key of a drained aggregator table."""
    start, end = rfc3339(window_start), rfc3339(window_end)
    events = []
    for (method, route, status_class, plan, experiments), (count, latency_sum, buckets,
                                                            sketch) in sorted(
        table.items(), key=lambda item: repr(item[0])
    ):
        event = {
            "type": "api_aggregate",
            "schema_version": 1,
            "event_id": uuid.uuid4().hex,
            "timestamp": end,
            "window_start": start,
            "service": service,
            "method": method,
            "route": route,
            "status_class": status_class,
            "direction": "inbound",
            "count": count,
            "latency_sum_ms": round(latency_sum, 3),
            "latency_buckets": [[b, buckets[b]] for b in sorted(buckets)],
            # Always present (empty: no call named a user): the server then knows that every
            # user of these calls is in it.
            "user_sketch": users.registers(sketch),
            "sdk": sdk,
        }
        if plan is not None:
            event["plan"] = plan
        if experiments:
            event["experiments"] = dict(experiments)
        events.append(event)
    return events
