"""A counting HTTP proxy in front of localstripe: ``python -m scripts.bench.proxy``.

Every bench process (gunicorn, RQ workers) has ``STRIPE_API_BASE`` pointed here, so each
Stripe API request they make, in whatever process, passes through and is counted by
method and path shape (``GET /v1/customers/{id}``). ``GET /__bench__/counts`` answers the
counts as JSON (the bench takes a snapshot before and after each phase). Bound to
127.0.0.1 only; forwards to ``--upstream`` (localstripe) over one keep-alive connection
per client connection.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_ID = re.compile(r"^[a-z]+_[A-Za-z0-9_]*[A-Z0-9][A-Za-z0-9_]*$")  # has a digit or capital
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
}

counts: Counter[str] = Counter()
counts_lock = threading.Lock()


def shape(method: str, target: str) -> str:
    path = urlsplit(target).path
    parts = ["{id}" if _ID.match(p) else p for p in path.split("/")]
    return f"{method} {'/'.join(parts)}"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int] = ("127.0.0.1", 8420)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass

    def _upstream(self) -> http.client.HTTPConnection:
        conn = getattr(self, "_conn", None)
        if conn is None:
            conn = self._conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        return conn

    def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
        self.send_response(status)
        for key, value in headers:
            if key.lower() not in _HOP_BY_HOP:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _forward(self) -> None:
        if self.path == "/__bench__/counts":
            with counts_lock:
                data = json.dumps(dict(counts)).encode()
            self._answer(200, data, [("Content-Type", "application/json")])
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        with counts_lock:
            counts[shape(self.command, self.path)] += 1
        for attempt in (1, 2):
            conn = self._upstream()
            try:
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                break
            except (ConnectionError, http.client.HTTPException, OSError):
                conn.close()
                self._conn = None
                if attempt == 2:
                    self._answer(
                        502,
                        b'{"error": "localstripe unreachable"}',
                        [("Content-Type", "application/json")],
                    )
                    return
        self._answer(response.status, data, response.getheaders())

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="e.g. http://127.0.0.1:8420")
    args = parser.parse_args()
    up = urlsplit(args.upstream)
    Handler.upstream = (up.hostname or "127.0.0.1", up.port or 80)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
