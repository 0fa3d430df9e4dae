"""A real FastAPI app under uvicorn, recorded by the ASGI middleware, shipping to a real
`valuetrace serve`; the server's answers must show route templates, sampled counts and every
5xx."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

import valuetrace
from conftest import ingest_key
from traffic import check_server_answers, drive, requests_plan
from valuetrace import ASGIMiddleware, Client, Identity, SamplingPolicy
from valuetrace.asgi import header


def identify(scope: dict) -> Identity:
    return Identity(session_id=header(scope, "x-session"), user_id=header(scope, "x-user"),
                    plan=header(scope, "x-plan"))


def make_app(client: Client) -> FastAPI:
    app = FastAPI()

    @app.get("/api/items/{item_id}")
    async def item(item_id: int):
        return {"id": item_id}

    @app.get("/api/search")
    async def search(q: str = ""):
        return {"q": q, "results": []}

    @app.post("/api/payments")
    async def pay(request: Request):
        return {"paid": (await request.json())["amount"]}

    @app.get("/api/users/{user_id}")
    def user(user_id: str):  # a sync endpoint (runs in the thread pool)
        return {"user": user_id}

    @app.get("/health")
    async def health():
        return {"ok": True}

    @app.get("/api/boom")
    async def boom():
        raise RuntimeError("boom")

    @app.get("/api/invalid")
    async def invalid(request: Request):
        valuetrace.set_error_type(request, "validation")
        return JSONResponse({"error": "bad input"}, status_code=422)

    app.add_middleware(ASGIMiddleware, client=client, identify=identify)
    return app


class UvicornThread:
    def __init__(self, app):
        self.socket = socket.socket()
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.address = self.socket.getsockname()
        config = uvicorn.Config(app, log_level="critical", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)
        self.socket.close()


def test_fastapi_calls_reach_the_server_as_templates_sampled_with_every_error(server):
    policy = SamplingPolicy()
    client = Client(server.url, ingest_key("fastapi"), service="shop-fastapi", sampling=policy,
                    flush_interval=0.2, batch_size=100)
    plan = requests_plan()
    with UvicornThread(make_app(client)) as app:
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
    assert stats["sent_events"] == stats["enqueued"] + stats["sent_aggregates"]
    check_server_answers(server, "fastapi", plan, policy, stats["aggregates_accepted"])
