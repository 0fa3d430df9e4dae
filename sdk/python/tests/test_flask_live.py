"""A real Flask app under werkzeug's threaded server, recorded by the WSGI middleware, shipping
to a real `valuetrace serve`; and the same app with the collector down."""

from __future__ import annotations

import threading
import time

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

import valuetrace
import valuetrace.flask
from conftest import free_port, ingest_key
from traffic import check_server_answers, drive, requests_plan
from valuetrace import Client, Identity, SamplingPolicy


def identify(environ: dict) -> Identity:
    return Identity(session_id=environ.get("HTTP_X_SESSION"), user_id=environ.get("HTTP_X_USER"),
                    plan=environ.get("HTTP_X_PLAN"))


def make_app(client: Client) -> Flask:
    app = Flask(__name__)

    @app.get("/api/items/<int:item_id>")
    def item(item_id):
        return jsonify(id=item_id)

    @app.get("/api/search")
    def search():
        return jsonify(q=request.args.get("q"), results=[])

    @app.post("/api/payments")
    def pay():
        return jsonify(paid=request.get_json()["amount"])

    @app.get("/api/users/<user_id>")
    def user(user_id):
        return jsonify(user=user_id)

    @app.get("/health")
    def health():
        return jsonify(ok=True)

    @app.get("/api/boom")
    def boom():
        raise RuntimeError("boom")

    @app.get("/api/invalid")
    def invalid():
        valuetrace.set_error_type(request, "validation")
        return jsonify(error="bad input"), 422

    valuetrace.flask.instrument(app, client, identify=identify)
    return app


class WerkzeugThread:
    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.address = ("127.0.0.1", self.server.server_port)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


def test_flask_calls_reach_the_server_as_templates_sampled_with_every_error(server):
    policy = SamplingPolicy()
    client = Client(server.url, ingest_key("flask"), service="shop-flask", sampling=policy,
                    flush_interval=0.2, batch_size=100)
    plan = requests_plan()
    with WerkzeugThread(make_app(client)) as app:
        drive(app.address, plan)
    assert client.shutdown(10.0)
    stats = client.stats()
    assert stats["requests"] == len(plan)
    assert stats["internal_errors"] == 0, stats
    assert stats["rejected_calls"] == 0, stats["last_rejection"]
    # The server either knows api_aggregate (accepts them all) or refuses them all.
    assert stats["aggregates_accepted"] in (True, False)
    assert stats["rejected_aggregates"] in (0, stats["sent_aggregates"]), stats
    assert stats["dropped_queue_full"] == stats["dropped_events"] == 0
    check_server_answers(server, "flask", plan, policy, stats["aggregates_accepted"])


def test_with_the_collector_down_the_app_answers_quickly_and_drops_are_counted():
    client = Client(f"http://127.0.0.1:{free_port()}", "vt_ingest_nobody", service="shop",
                    sampling=SamplingPolicy(default_weight=1.0), queue_size=50, batch_size=10,
                    flush_interval=0.01, max_retries=1, backoff_base=0.001, breaker_failures=3,
                    breaker_cool_down=60.0, timeout=0.5)
    plan = requests_plan(sessions=50)
    with WerkzeugThread(make_app(client)) as app:
        latencies = sorted(drive(app.address, plan))
        deadline = time.monotonic() + 10
        while client.stats()["breaker_state"] != "open":
            assert time.monotonic() < deadline, client.stats()
            time.sleep(0.01)
    # Every request succeeded (drive checks each status) and none waited on the collector.
    assert latencies[int(len(latencies) * 0.99)] < 100, latencies[-10:]
    assert client.shutdown(5.0)
    stats = client.stats()
    assert stats["requests"] == len(plan)
    assert stats["sent_events"] == 0
    assert stats["dropped_events"] + stats["dropped_queue_full"] > 0
    assert stats["breaker_opened"] >= 1 and stats["retries"] >= 1
    assert stats["internal_errors"] == 0
