"""Shared fixtures: a real `valuetrace serve` (binary from $VALUETRACE_BIN) on a free port with a
temporary data dir and one project per test file, and helpers to drive apps and read answers."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

PROJECTS = ("fastapi", "flask", "django")


def ingest_key(project: str) -> str:
    return f"vt_ingest_{project}_key"


def read_key(project: str) -> str:
    return f"vt_read_{project}_key"


def key_hash(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(address: tuple[str, int], path: str, key: str | None = None) -> tuple[int, object]:
    """One GET: the status and the body (parsed when it is JSON, else the text)."""
    connection = http.client.HTTPConnection(*address, timeout=30)
    try:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read()
        try:
            return response.status, json.loads(body)
        except ValueError:
            return response.status, body.decode("utf-8", "replace")
    finally:
        connection.close()


class LiveServer:
    def __init__(self, process: subprocess.Popen, address: tuple[str, int], data_dir: Path):
        self.process = process
        self.address = address
        self.url = f"http://{address[0]}:{address[1]}"
        self.data_dir = data_dir

    def answer(self, project: str, name: str, **params) -> dict:
        query = urllib.parse.urlencode(params)
        status, body = get_json(self.address, f"/api/v1/projects/{project}/{name}?{query}",
                                read_key(project))
        assert status == 200, body
        return body

    def endpoints(self, project: str) -> list[dict]:
        return self.answer(project, "endpoints", since="1h", limit=1000)["endpoints"]


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> LiveServer:
    binary = os.environ.get("VALUETRACE_BIN")
    if not binary:
        if os.environ.get("VALUETRACE_REQUIRE_SERVER"):
            pytest.fail("VALUETRACE_BIN is not set")
        pytest.skip("VALUETRACE_BIN is not set: run ./sdk/python/run-tests.sh")
    directory = tmp_path_factory.mktemp("valuetrace")
    address = ("127.0.0.1", free_port())
    config = [f'listen = "{address[0]}:{address[1]}"', f'data_dir = "{directory / "data"}"',
              "[storage]", 'persist_interval = "2s"']
    for project in PROJECTS:
        config += ["[[projects]]", f'id = "{project}"',
                   f'ingest_key_hashes = ["{key_hash(ingest_key(project))}"]',
                   f'read_key_hashes = ["{key_hash(read_key(project))}"]']
    path = directory / "valuetrace.toml"
    path.write_text("\n".join(config) + "\n")
    log = open(directory / "server.log", "wb")
    process = subprocess.Popen([binary, "serve", "--config", str(path)],
                               env={**os.environ, "VALUETRACE_LOG": "warn"},
                               stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + 60
    while True:
        try:
            if get_json(address, "/readyz")[0] == 200:
                break
        except (OSError, http.client.HTTPException, ValueError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"valuetrace serve did not become ready: {(directory / 'server.log').read_text()}")
        time.sleep(0.05)
    yield LiveServer(process, address, directory)
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    log.close()
