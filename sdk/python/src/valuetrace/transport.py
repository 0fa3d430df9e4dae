"""One POST of a gzip-compressed NDJSON batch to ``{url}/v1/batch`` over ``http.client`` (http and
https), keeping the connection alive between batches."""

from __future__ import annotations

import gzip
import http.client
import json
import ssl
from urllib.parse import urlsplit

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def encode(events: list[dict]) -> bytes:
    """The events as gzip-compressed NDJSON (one JSON object a line)."""
    text = "\n".join(_dumps(event) for event in events) + "\n"
    return gzip.compress(text.encode("utf-8"), compresslevel=1)


class Response:
    __slots__ = ("status", "retry_after", "body")

    def __init__(self, status: int, retry_after: float | None, body: bytes) -> None:
        self.status = status
        self.retry_after = retry_after
        self.body = body

    def json(self) -> dict | None:
        try:
            answer = json.loads(self.body)
        except ValueError:
            return None
        return answer if isinstance(answer, dict) else None


class Transport:
    def __init__(self, url: str, ingest_key: str, timeout: float,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"the collector URL must be http://host[:port] or https://..., got {url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.path = (parts.path or "") + "/v1/batch"
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.headers = {
            "Authorization": f"Bearer {ingest_key}",
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
        }
        self._connection: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.https:
            context = self.ssl_context or ssl.create_default_context()
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                               context=context)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def close(self) -> None:
        if self._connection is not None:
            try:
                self._connection.close()
            except Exception:
                pass
            self._connection = None

    def post(self, body: bytes) -> Response:
        """Sends ``body``; raises OSError / http.client.HTTPException when no answer came. A kept-
        alive connection the server closed meanwhile is retried once on a fresh one."""
        while True:
            reused = self._connection is not None
            if self._connection is None:
                self._connection = self._connect()
            try:
                self._connection.request("POST", self.path, body, self.headers)
                response = self._connection.getresponse()
                data = response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if reused:
                    continue
                raise
            except BaseException:
                self.close()
                raise
            if response.will_close:
                self.close()
            return Response(response.status, _retry_after(response.getheader("Retry-After")), data)


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
