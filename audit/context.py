"""Per-request context (request id, client IP) shared by audit entries and log lines.

Set by :class:`audit.middleware.RequestContextMiddleware` for web requests; jobs may set
a request id of their own (e.g. the Stripe event id) with :func:`bind`.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
client_ip_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "client_ip", default=None
)
stripe_event_id_var: contextvars.ContextVar[str] = contextvars.ContextVar(
    "stripe_event_id", default=""
)


def current_request_id() -> str:
    return request_id_var.get()


def current_client_ip() -> str | None:
    return client_ip_var.get()


def current_stripe_event_id() -> str:
    return stripe_event_id_var.get()


def note_stripe_event(event_id: str) -> None:
    """Tag the rest of the current bound block (a webhook request) with a Stripe event id;
    the enclosing :func:`bind` resets it when the block ends."""
    stripe_event_id_var.set(event_id or "")


@contextmanager
def bind(
    *, request_id: str, client_ip: str | None = None, stripe_event_id: str | None = None
) -> Iterator[None]:
    """Run a block with the given request id (and IP, and Stripe event id; None keeps the
    current one) visible to audit and logging."""
    rid = request_id_var.set(request_id)
    ip = client_ip_var.set(client_ip)
    eid = stripe_event_id_var.set(
        stripe_event_id if stripe_event_id is not None else stripe_event_id_var.get()
    )
    try:
        yield
    finally:
        request_id_var.reset(rid)
        client_ip_var.reset(ip)
        stripe_event_id_var.reset(eid)
