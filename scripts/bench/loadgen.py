"""An asyncio HTTP/1.1 load generator for the webhook endpoints (127.0.0.1 only).

Two modes, both bounded in count and in time:

- ``fixed_rate``: open loop. Request *i* is due at ``t0 + i / rate`` whatever happened
  to the earlier ones; up to ``max_conns`` requests are in flight. Latency is measured
  from the *scheduled* send time, so a server (or a client) that falls behind shows up
  in the figures instead of silently lowering the offered rate (no coordinated omission).
- ``closed_loop``: ``concurrency`` connections, each sending its next request as soon as
  the previous answer is in (saturation throughput).

Each request is signed just before it is written (``sign(body) -> Stripe-Signature``),
so the signature timestamp is the send time, as Stripe's would be. Keep-alive is used
when the server offers it (gunicorn gthread); a server that closes after each response
(gunicorn sync) costs a new TCP connection per request. A reused idle connection that
fails before any byte of the answer arrived is retried once on a new connection.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Item:
    key: str  # the Stripe event id
    path: str  # e.g. /stripe/webhook/<uuid>/
    body: bytes


@dataclass
class Result:
    key: str
    intended: float  # perf_counter: when it was due (fixed rate) or picked (closed loop)
    sent: float = 0.0  # perf_counter: request written
    sent_wall: float = 0.0  # time.time() at the same instant (for end-to-end lag)
    done: float = 0.0  # perf_counter: answer read completely
    status: int = 0  # 0: no HTTP answer (see error)
    error: str = ""
    retried: bool = False

    @property
    def latency(self) -> float:
        return self.done - self.intended

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.last_used = time.perf_counter()

    def close(self) -> None:
        self.writer.close()


class _Dropped(Exception):
    """The connection closed before any byte of the answer arrived."""


class Client:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        max_conns: int,
        sign: Callable[[bytes], str],
        timeout: float = 30.0,
        idle_reuse: float = 2.0,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the bench load generator only talks to 127.0.0.1")
        self.host, self.port, self.sign, self.timeout = host, port, sign, timeout
        self.idle_reuse = idle_reuse
        self._slots = asyncio.Semaphore(max_conns)
        self._idle: list[_Conn] = []
        self.connections_opened = 0

    async def _open(self) -> _Conn:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.connections_opened += 1
        return _Conn(reader, writer)

    def _take_idle(self) -> _Conn | None:
        now = time.perf_counter()
        while self._idle:
            conn = self._idle.pop()
            if now - conn.last_used < self.idle_reuse and not conn.reader.at_eof():
                return conn
            conn.close()
        return None

    async def _exchange(self, conn: _Conn, item: Item, result: Result) -> bool:
        """Send one request, read its answer; returns whether the connection stays open."""
        head = (
            f"POST {item.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            "Content-Type: application/json; charset=utf-8\r\n"
            "User-Agent: Stripe/1.0 (+https://stripe.com/docs/webhooks)\r\n"
            f"Stripe-Signature: {self.sign(item.body)}\r\n"
            f"Content-Length: {len(item.body)}\r\n\r\n"
        ).encode()
        result.sent = time.perf_counter()
        result.sent_wall = time.time()
        try:
            conn.writer.write(head + item.body)
            await conn.writer.drain()
            status_line = await conn.reader.readline()
        except (ConnectionError, OSError) as exc:
            raise _Dropped() from exc
        if not status_line:
            raise _Dropped()
        parts = status_line.split(None, 2)
        result.status = int(parts[1])
        keep = parts[0] == b"HTTP/1.1"
        length, chunked = None, False
        while True:
            line = await conn.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                chunked = True
            elif name == b"connection":
                keep = value != b"close"
        if chunked:
            while True:
                size = int((await conn.reader.readline()).split(b";")[0], 16)
                await conn.reader.readexactly(size + 2)
                if size == 0:
                    break
        elif length is not None:
            await conn.reader.readexactly(length)
        else:
            await conn.reader.read()
            keep = False
        result.done = time.perf_counter()
        return keep

    async def send(self, item: Item, intended: float) -> Result:
        result = Result(item.key, intended)
        async with self._slots:
            conn = self._take_idle()
            reused = conn is not None
            try:
                if conn is None:
                    conn = await self._open()
                try:
                    keep = await asyncio.wait_for(self._exchange(conn, item, result), self.timeout)
                except _Dropped:
                    conn.close()
                    if not reused:
                        raise
                    result.retried = True
                    conn = await self._open()
                    keep = await asyncio.wait_for(self._exchange(conn, item, result), self.timeout)
            except (
                TimeoutError,
                _Dropped,
                ConnectionError,
                OSError,
                asyncio.IncompleteReadError,
                ValueError,
            ) as exc:
                result.status = 0
                result.error = exc.__class__.__name__
                result.done = time.perf_counter()
                if conn is not None:
                    conn.close()
                return result
            if keep:
                conn.last_used = time.perf_counter()
                self._idle.append(conn)
            else:
                conn.close()
        return result

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()


@dataclass
class Run:
    results: list[Result]
    elapsed: float  # first send due -> last answer
    offered: int  # requests the schedule held (may exceed len(results) if cut)
    connections: int

    @property
    def ok(self) -> list[Result]:
        return [r for r in self.results if r.ok]

    @property
    def throughput(self) -> float:
        return len(self.ok) / self.elapsed if self.elapsed > 0 else 0.0


async def fixed_rate(
    client: Client, items: Sequence[Item], *, rate: float, max_seconds: float
) -> Run:
    """Open loop at ``rate`` requests/s; stops scheduling after ``max_seconds`` and waits
    at most ``client.timeout`` more for the answers in flight."""
    start = time.perf_counter() + 0.05
    tasks = []
    for i, item in enumerate(items):
        due = start + i / rate
        if due - start > max_seconds:
            break
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(client.send(item, due)))
    results = list(await asyncio.gather(*tasks))
    end = max((r.done for r in results), default=start)
    return Run(results, end - start, len(items), client.connections_opened)


async def closed_loop(
    client: Client, items: Iterable[Item], *, concurrency: int, max_seconds: float
) -> Run:
    """``concurrency`` senders, back to back, until the items or ``max_seconds`` run out."""
    source = iter(items)
    results: list[Result] = []
    start = time.perf_counter()
    stop_at = start + max_seconds

    async def sender() -> None:
        for item in source:
            now = time.perf_counter()
            if now > stop_at:
                return
            results.append(await client.send(item, now))

    await asyncio.gather(*(sender() for _ in range(concurrency)))
    end = max((r.done for r in results), default=start)
    return Run(results, end - start, len(results), client.connections_opened)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[rank - 1]
