"""A stand-in collector on a loopback port: records every batch (decoded from gzip NDJSON) and
answers with a scripted status."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeCollector:
    def __init__(self, answer=None):
        #: answer(request_number, events) -> (status, body dict or None, headers dict)
        self.answer = answer or (lambda n, events: (200, None, {}))
        self.batches: list[list[dict]] = []
        self.headers: list[dict] = []
        self.requests = 0
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                events = [json.loads(line) for line in gzip.decompress(body).splitlines() if line]
                with collector._lock:
                    number = collector.requests
                    collector.requests += 1
                    collector.headers.append(dict(self.headers))
                status, answer, headers = collector.answer(number, events)
                if answer is None:
                    answer = {"accepted": len(events), "duplicates": 0, "rejected": []}
                if 200 <= status < 300:
                    with collector._lock:
                        collector.batches.append(events)
                data = json.dumps(answer).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def events(self, kind=None):
        with self._lock:
            return [e for batch in self.batches for e in batch if kind is None or e["type"] == kind]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
