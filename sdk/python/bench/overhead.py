"""Added latency of the valuetrace middleware per request, in-process (no network, no server):
the same bare ASGI and WSGI apps called with and without the middleware, interleaved in blocks
so that both see the same machine state. Reports the median and p99 of each and the difference.

The sender thread is not started: this measures the request path (aggregate update, sampling
decision, queue push). The sender's own cost per event (building, JSON, gzip on its thread) is
measured separately and reported per event.

    python bench/overhead.py [--requests 200000] [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from valuetrace import ASGIMiddleware, Client, Identity, SamplingPolicy, WSGIMiddleware
from valuetrace.asgi import header
from valuetrace.events import api_call
from valuetrace.transport import encode

perf_counter_ns = time.perf_counter_ns


class Route:
    path_format = "/api/items/{item_id}"


ROUTE = Route()
START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"application/json")]}
BODY = {"type": "http.response.body", "body": b'{"id": 42, "name": "shoe"}'}
REQUEST = {"type": "http.request", "body": b"", "more_body": False}
# 1,000 sessions in turn (the client caches their hashes as it would in production).
SESSIONS = [f"sess-{i:04d}-{i * 7919 % 10007:05d}" for i in range(1000)]
SCOPES = [{"type": "http", "method": "GET", "path": "/api/items/42", "root_path": "",
           "query_string": b"", "headers": [(b"host", b"shop"), (b"x-session", s.encode()),
                                            (b"x-plan", b"pro")]} for s in SESSIONS]
ENVIRONS = [{"REQUEST_METHOD": "GET", "PATH_INFO": "/api/items/42", "HTTP_HOST": "shop",
             "HTTP_X_SESSION": s, "HTTP_X_PLAN": "pro"} for s in SESSIONS]


async def bare_asgi(scope, receive, send):
    scope["route"] = ROUTE  # what a router does
    await receive()
    await send(START)
    await send(BODY)


def bare_wsgi(environ, start_response):
    environ["valuetrace.route"] = "/api/items/{item_id}"  # what a router hook does
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"id": 42, "name": "shoe"}']


def asgi_identify(scope):
    return Identity(session_id=header(scope, "x-session"), plan=header(scope, "x-plan"))


def wsgi_identify(environ):
    return Identity(session_id=environ.get("HTTP_X_SESSION"), plan=environ.get("HTTP_X_PLAN"))


async def _receive():
    return REQUEST


async def _send(message):
    pass


def _start_response(status, headers, exc_info=None):
    pass


async def time_asgi(app, n: int, out: list) -> None:
    append = out.append
    for i in range(n):
        scope = SCOPES[i % 1000].copy()
        started = perf_counter_ns()
        await app(scope, _receive, _send)
        append(perf_counter_ns() - started)


def time_wsgi(app, n: int, out: list) -> None:
    append = out.append
    for i in range(n):
        environ = ENVIRONS[i % 1000].copy()
        started = perf_counter_ns()
        body = app(environ, _start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
        append(perf_counter_ns() - started)


def percentile(sorted_ns: list, q: float) -> float:
    return sorted_ns[min(int(q * len(sorted_ns)), len(sorted_ns) - 1)] / 1000.0


SCENARIOS = {
    # name: (policy, with identity)
    "anonymous, default policy (rate 0.1)": (SamplingPolicy(), False),
    "session + pro plan, default policy (rate 0.15)": (SamplingPolicy(), True),
    "every call kept (rate 1)": (SamplingPolicy(default_weight=1.0), True),
}


def run(kind: str, scenario: str, requests: int, per_block: int = 5_000) -> dict:
    policy, identified = SCENARIOS[scenario]
    client = Client("http://127.0.0.1:9", "k", service="bench", sampling=policy,
                    queue_size=per_block + 10, start=False)
    if kind == "asgi":
        wrapped = ASGIMiddleware(bare_asgi, client, identify=asgi_identify if identified else None)
        bare = bare_asgi
    else:
        wrapped = WSGIMiddleware(bare_wsgi, client, identify=wsgi_identify if identified else None)
        bare = bare_wsgi
    base, mw = [], []
    blocks = max(requests // per_block, 1)
    loop = asyncio.new_event_loop()
    taken = 0
    for block in range(blocks + 1):  # block 0 warms up
        target_base, target_mw = ([], []) if block == 0 else (base, mw)
        for app, out in ((bare, target_base), (wrapped, target_mw)):
            if kind == "asgi":
                loop.run_until_complete(time_asgi(app, per_block, out))
            else:
                time_wsgi(app, per_block, out)
        # What the sender thread does between flushes: take the queued events (untimed).
        taken += len(client.queue.take(per_block + 10))
        client.aggregator.drain()
    loop.close()
    stats = client.stats()
    client.shutdown(0)
    base.sort()
    mw.sort()
    result = {
        "kind": kind, "scenario": scenario, "requests": len(mw),
        "bare_p50": percentile(base, 0.5), "bare_p99": percentile(base, 0.99),
        "mw_p50": percentile(mw, 0.5), "mw_p99": percentile(mw, 0.99),
        "kept": taken / max(stats["requests"], 1),
        "dropped": stats["dropped_queue_full"],
        "errors": stats["internal_errors"],
    }
    result["added_p50"] = result["mw_p50"] - result["bare_p50"]
    result["added_p99"] = result["mw_p99"] - result["bare_p99"]
    result["added_mean"] = statistics.fmean(mw) / 1000 - statistics.fmean(base) / 1000
    return result


def sender_cost(events: int = 20_000) -> float:
    """µs of sender-thread CPU per event: building the event, JSON, gzip (batches of 500)."""
    who = Identity(session_id="sess-4242", user_id="user-7", plan="pro", experiments={"reco": "b"})
    record = (time.time(), "GET", "/api/items/{item_id}", 200, 12.345, 0, 26, who, None, 0.15)
    started = time.process_time()
    for _ in range(events // 500):
        encode([api_call(record, "bench", "valuetrace-python/0.1.0") for _ in range(500)])
    return (time.process_time() - started) / events * 1e6


def machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({model}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()} ({platform.python_implementation()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000,
                        help="timed requests per app and variant (default 200000)")
    parser.add_argument("--write", type=Path, help="write the results as Markdown to this file")
    args = parser.parse_args()
    rows = []
    for kind in ("asgi", "wsgi"):
        for scenario in SCENARIOS:
            row = run(kind, scenario, args.requests)
            rows.append(row)
            print(f"{kind} | {scenario}: bare p50 {row['bare_p50']:.2f} µs p99 {row['bare_p99']:.2f}"
                  f" | with middleware p50 {row['mw_p50']:.2f} p99 {row['mw_p99']:.2f}"
                  f" | added p50 {row['added_p50']:.2f} µs, p99 {row['added_p99']:.2f} µs,"
                  f" mean {row['added_mean']:.2f} µs (kept {row['kept']:.0%})", flush=True)
    per_event = sender_cost()
    print(f"sender thread: {per_event:.1f} µs CPU per event (build + JSON + gzip)")
    if args.write:
        write(args.write, rows, per_event, args.requests)


def write(path: Path, rows: list, per_event: float, requests: int) -> None:
    command = f"python bench/overhead.py --requests {requests} --write {path.name}"
    lines = [
        "# Python client: overhead per request",
        "",
        "Added latency of the valuetrace middleware per request vs the bare app, in-process (no",
        "network, no server): a minimal ASGI app and a minimal WSGI app (each sets its route",
        "template as a router would and answers a 26-byte JSON body) called with and without",
        "`ASGIMiddleware` / `WSGIMiddleware`, interleaved in blocks of 5,000 requests; between",
        "blocks the queued events and the aggregates are taken away untimed, as the sender thread",
        "does at each flush. The added figures are the differences of the percentiles (p50 and",
        "p99 with middleware minus without). The sender thread is not started: this is the",
        "request path (aggregate update, sampling decision, queue push); the sender's own work is",
        "measured below and runs off the request path. 1,000 sessions take turns.",
        "",
        f"- Command (from `sdk/python`, in the test venv): `{command}`",
        f"- Machine: {machine()}",
        f"- Date: {time.strftime('%Y-%m-%d')}; {requests:,} timed requests per app and variant",
        "- Target: ≤ 20 µs added at p99",
        "",
        "| app | scenario | bare p50 / p99 µs | with middleware p50 / p99 µs | added p50 µs | added p99 µs | events kept |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['kind'].upper()} | {r['scenario']} | {r['bare_p50']:.2f} / {r['bare_p99']:.2f} | "
            f"{r['mw_p50']:.2f} / {r['mw_p99']:.2f} | {r['added_p50']:.2f} | {r['added_p99']:.2f} | "
            f"{r['kept']:.0%} |")
    lines += [
        "",
        f"Sender thread (off the request path): {per_event:.1f} µs of CPU per kept event to build",
        "it, encode it as JSON and gzip it (batches of 500); under the GIL this work competes with",
        "request threads for the interpreter, spread over the flush interval.",
        "",
    ]
    path.write_text("\n".join(lines))
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
