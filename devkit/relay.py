"""Capture the webhooks localstripe sends, to hand them to the console byte for byte.

localstripe POSTs each event about one second after the change, concurrently and in no
particular order. The relay is a small HTTP receiver on a free local port: it answers
200, keeps the exact body and ``Stripe-Signature`` header of every delivery, and lets
the caller wait (bounded) until the deliveries it expects have arrived. Forwarding them
to the webhook view (through Django's test client, or over HTTP to a running console)
then exercises signature verification and storage on localstripe's real bytes.

Why not register the console itself with localstripe: the caller learns exactly when a
delivery has arrived and what the view answered, the tests keep their transaction, and
a late delivery from an earlier test (a closed relay) can never leak into the next one.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    """One webhook delivery as received: the exact bytes and signature header."""

    body: bytes
    signature: str
    received_at: float
    payload: dict[str, Any] = field(default_factory=dict)
    forwarded: bool = False

    @property
    def type(self) -> str:
        return str(self.payload.get("type", ""))

    @property
    def id(self) -> str:
        return str(self.payload.get("id", ""))

    @property
    def object(self) -> dict[str, Any]:
        return (self.payload.get("data") or {}).get("object") or {}


class WebhookRelay:
    """A threaded HTTP receiver keeping every delivery. Use as a context manager, or
    ``start()`` / ``stop()``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        relay = self
        self._lock = threading.Condition()
        self.deliveries: list[Delivery] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                relay._keep(body, self.headers.get("Stripe-Signature", ""))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_address[1]}/stripe-webhooks"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="webhook-relay", daemon=True
        )

    def start(self) -> WebhookRelay:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookRelay:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def _keep(self, body: bytes, signature: str) -> None:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = {}
        with self._lock:
            self.deliveries.append(
                Delivery(
                    body=body,
                    signature=signature,
                    received_at=time.monotonic(),
                    payload=payload if isinstance(payload, dict) else {},
                )
            )
            self._lock.notify_all()

    def counts(self) -> Counter[str]:
        with self._lock:
            return Counter(d.type for d in self.deliveries)

    def wait_for(
        self, expected: Mapping[str, int] | Iterable[str], *, timeout: float = 15.0, since: int = 0
    ) -> list[Delivery]:
        """Block until at least ``expected[type]`` deliveries of each type have arrived
        (counting from delivery number ``since``), at most ``timeout`` seconds. Returns
        every delivery received so far from ``since``; raises TimeoutError naming what is
        missing. A list of types means one of each."""
        wanted = Counter(expected if isinstance(expected, Mapping) else list(expected))
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                have = Counter(d.type for d in self.deliveries[since:])
                missing = {t: n - have[t] for t, n in wanted.items() if have[t] < n}
                if not missing:
                    return list(self.deliveries[since:])
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"webhooks still missing after {timeout:.0f}s: {missing}; "
                        f"received: {dict(have)}"
                    )
                self._lock.wait(remaining)

    def pending(self) -> list[Delivery]:
        """Deliveries not forwarded yet, in arrival order."""
        with self._lock:
            return [d for d in self.deliveries if not d.forwarded]
