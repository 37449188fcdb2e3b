"""Per-request context (request id, client IP) shared by audit entries and log lines.

Set by :class:`audit.middleware.RequestContextMiddleware` for web requests; jobs may set
a request id of their own (e.g. the Stripe event id) with :func:`bind`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
client_ip_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_ip", default=None)


def current_request_id() -> str:
    return request_id_var.get()


def current_client_ip() -> str | None:
    return client_ip_var.get()


@contextmanager
def bind(*, request_id: str, client_ip: str | None = None) -> Iterator[None]:
    """Run a block with the given request id (and IP) visible to audit and logging."""
    rid = request_id_var.set(request_id)
    ip = client_ip_var.set(client_ip)
    try:
        yield
    finally:
        request_id_var.reset(rid)
        client_ip_var.reset(ip)
