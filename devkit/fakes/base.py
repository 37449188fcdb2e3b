"""A small threaded HTTP server for vendor fakes, with faults a test can switch on.

Each fake records every request it answered (monotonic and wall time, method, path,
status) so tests measure rates from the vendor's side. Faults: answer ``status`` (429
with ``Retry-After``, 500, 401 ...) for the next ``times`` requests or for ``seconds``,
or ``hang`` (answer only after ``delay`` seconds, so the client times out) — optionally
after doing the work, like a vendor whose answer is lost on the way back.

Plan limits (``limit(count, window)``) answer like the vendor past its rate: a request
beyond ``count`` in the rolling ``window`` gets the vendor's own 429
(:meth:`FakeVendor.limit_answer`), and only the requests served count. ``peak`` measures
the busiest window from the vendor's side, for tests and the benchmark.
"""

from __future__ import annotations

import bisect
import json
import threading
import time
import urllib.parse
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Fault:
    status: int = 0
    times: int | None = None
    until: float | None = None
    retry_after: float | None = None
    delay: float = 0.0
    process: bool = False  # hang: do the work, then answer late
    path: str = ""
    method: str = ""
    body: dict[str, Any] = field(default_factory=dict)

    def active(self, now: float) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return self.until is None or now < self.until


@dataclass
class Limit:
    """At most ``count`` served requests in any rolling ``window`` seconds, counting the
    requests whose path starts with ``path`` (``""``: all)."""

    count: int
    window: float
    path: str = ""
    policy: str = ""
    served: deque = field(default_factory=deque)

    def applies(self, path: str) -> bool:
        return path.startswith(self.path)

    def full(self, now: float) -> bool:
        while self.served and self.served[0] <= now - self.window:
            self.served.popleft()
        return len(self.served) >= self.count

    def free_in(self, now: float) -> float:
        return max(self.served[0] + self.window - now, 0.0) if self.served else 0.0


@dataclass
class Recorded:
    at: float  # time.monotonic()
    wall: float  # time.time()
    method: str
    path: str
    status: int
    body: Any
    raw: bytes = b""  # the body as sent (a signature is over these bytes)
    headers: dict[str, str] = field(default_factory=dict)


class FakeVendor:
    name = "vendor"

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.limits: list[Limit] = []
        self.request_headers: Any = {}
        self.lock = threading.RLock()
        self.server: ThreadingHTTPServer | None = None

    # --- control -----------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeVendor:
        """Serve on ``port`` of 127.0.0.1 (0: any free port), in a daemon thread."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def fail(
        self,
        status: int,
        *,
        times: int | None = None,
        seconds: float | None = None,
        retry_after: float | None = None,
        path: str = "",
        body: dict | None = None,
    ) -> Fault:
        fault = Fault(
            status=status,
            times=times,
            retry_after=retry_after,
            path=path,
            until=time.monotonic() + seconds if seconds is not None else None,
            body=body or {},
        )
        with self.lock:
            self.faults.append(fault)
        return fault

    def hang(
        self,
        delay: float,
        *,
        times: int = 1,
        process: bool = False,
        path: str = "",
        method: str = "",
    ) -> Fault:
        fault = Fault(delay=delay, times=times, process=process, path=path, method=method)
        with self.lock:
            self.faults.append(fault)
        return fault

    def limit(self, count: int, window: float, *, path: str = "", policy: str = "") -> Limit:
        """Answer 429 (the vendor's way) beyond ``count`` requests per rolling ``window``."""
        limit = Limit(count=count, window=window, path=path, policy=policy)
        with self.lock:
            self.limits.append(limit)
        return limit

    def limit_answer(self, limit: Limit, now: float) -> tuple[int, Any, dict[str, str]]:
        return 429, self.error_body(429), {"Retry-After": f"{max(1, round(limit.free_in(now)))}"}

    def peak(self, window: float, *, path: str = "") -> int:
        """The most requests served (not 429) in any rolling ``window`` seconds."""
        with self.lock:
            times = [r.at for r in self.requests if r.status != 429 and r.path.startswith(path)]
        times.sort()
        return max(
            (bisect.bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0
        )

    def heal(self) -> None:
        with self.lock:
            self.faults.clear()

    def calls(
        self, method: str | None = None, path: str = "", status: int | None = None
    ) -> list[Recorded]:
        with self.lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method)
                and r.path.startswith(path)
                and (status is None or r.status == status)
            ]

    # --- serving -----------------------------------------------------------------------

    def authorized(self, headers: Any) -> bool:
        return True

    def error_body(self, status: int) -> dict[str, Any]:
        return {"message": f"fake {self.name} error {status}"}

    def route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any, dict[str, str]]:
        raise NotImplementedError

    def _fault_for(self, method: str, path: str) -> Fault | None:
        now = time.monotonic()
        with self.lock:
            for fault in self.faults:
                if (
                    fault.active(now)
                    and path.startswith(fault.path)
                    and fault.method in ("", method)
                ):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        parsed = urllib.parse.urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        method, path = handler.command, parsed.path
        query = urllib.parse.parse_qs(parsed.query)
        fault = self._fault_for(method, path)
        headers: dict[str, str] = {}
        if fault is not None and fault.delay:
            if fault.process:
                self._answer(method, path, query, body, handler.headers)
            time.sleep(fault.delay)  # the vendor being slow: the client times out first
            status, payload = 504, {"message": "too late"}
        elif fault is not None:
            status = fault.status
            payload = fault.body or self.error_body(status)
            if fault.retry_after is not None:
                headers["Retry-After"] = f"{fault.retry_after:g}"
        else:
            status, payload, headers = self._limited(path) or self._answer(
                method, path, query, body, handler.headers
            )
        with self.lock:
            self.requests.append(
                Recorded(
                    time.monotonic(),
                    time.time(),
                    method,
                    path,
                    status,
                    body,
                    raw,
                    {k.lower(): v for k, v in handler.headers.items()},
                )
            )
        if status == 204:
            data = b""  # "No Content": no body, as the vendors answer
        else:
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(data)
        except OSError:
            pass  # the client gave up (timeout)

    def _limited(self, path: str) -> tuple[int, Any, dict[str, str]] | None:
        """The plan's 429 when a limit of this path is full; else count the request."""
        now = time.monotonic()
        with self.lock:
            matching = [limit for limit in self.limits if limit.applies(path)]
            for limit in matching:
                if limit.full(now):
                    return self.limit_answer(limit, now)
            for limit in matching:
                limit.served.append(now)
        return None

    def _answer(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, headers: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if not self.authorized(headers):
            return 401, self.error_body(401), {}
        with self.lock:
            self.request_headers = headers  # for routes that read a header (Idempotency-Key)
            return self.route(method, path, query, body)


def correlation_id() -> str:
    return str(uuid.uuid4())
