"""A small threaded HTTP server for vendor fakes, with faults a test can switch on.

Each fake records every request it answered (monotonic and wall time, method, path,
status) so tests measure rates from the vendor's side. Faults: answer ``status`` (429
with ``Retry-After``, 500, 401 ...) for the next ``times`` requests or for ``seconds``,
or ``hang`` (answer only after ``delay`` seconds, so the client times out) — optionally
after doing the work, like a vendor whose answer is lost on the way back.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import uuid
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
class Recorded:
    at: float  # time.monotonic()
    wall: float  # time.time()
    method: str
    path: str
    status: int
    body: Any


class FakeVendor:
    name = "vendor"

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.faults: list[Fault] = []
        self.lock = threading.RLock()
        self.server: ThreadingHTTPServer | None = None

    # --- control -----------------------------------------------------------------------

    def start(self) -> FakeVendor:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                fake._dispatch(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
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
            status, payload, headers = self._answer(method, path, query, body, handler.headers)
        with self.lock:
            self.requests.append(
                Recorded(time.monotonic(), time.time(), method, path, status, body)
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

    def _answer(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, headers: Any
    ) -> tuple[int, Any, dict[str, str]]:
        if not self.authorized(headers):
            return 401, self.error_body(401), {}
        with self.lock:
            return self.route(method, path, query, body)


def correlation_id() -> str:
    return str(uuid.uuid4())
