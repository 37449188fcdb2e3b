"""Billing's published contract: what Stripe told us, as plain data, and who listens.

This module is everything crm_sync and support may import from billing. Billing
receives a Stripe event, projects it onto the canonical customer, and then publishes a
:class:`BillingEvent` to every subscriber registered for its type. A subscriber is a
function ``(BillingEvent) -> str`` (a short note of what it did) registered with
:func:`subscribe` in its app's ``AppConfig.ready``.

Each subscriber gets its own durable run per event (``billing.models.HandlerRun``, named
after the subscriber): it is retried alone, with backoff, until it succeeds or is dead
and alerted, and a succeeded run never runs again. So a subscriber must be idempotent
(its outbox rows carry dedupe keys) and may raise to be retried. A subscriber runs only
after the projection of its event succeeded, so ``customer_id`` and the customer row it
reads are already up to date.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class BillingEvent:
    """One Stripe event after billing applied it; plain data only."""

    event_id: str
    """Stripe's event id (``evt_…``): stable across redeliveries and replays."""
    type: str
    created: datetime | None
    livemode: bool
    customer_id: uuid.UUID | None
    """The canonical customer (``customers.Customer`` pk) billing resolved, or None."""
    stripe_customer_id: str
    object: Mapping[str, Any] = field(default_factory=dict)
    """The Stripe object of the event (``data.object``), as Stripe sent it."""
    changes: tuple[str, ...] = ()
    """The customer fields the projection changed (``status``, ``plan_id`` …)."""

    @property
    def cause(self) -> str:
        """How outbox rows and tickets name this event as their cause."""
        return f"stripe_event:{self.event_id}"


Subscriber = Callable[[BillingEvent], str]


@dataclass(frozen=True)
class Subscription:
    name: str
    event_types: frozenset[str]
    fn: Subscriber


_SUBSCRIPTIONS: dict[str, Subscription] = {}


def subscribe(name: str, event_types: Iterable[str], fn: Subscriber) -> None:
    """Run ``fn`` for every event of ``event_types`` (one durable run per event, named
    ``name``). Registering a name again replaces it (apps' ready() may run twice in tests)."""
    if not name or len(name) > 40:
        raise ValueError(f"invalid subscriber name {name!r}")
    _SUBSCRIPTIONS[name] = Subscription(name=name, event_types=frozenset(event_types), fn=fn)


def subscriptions_for(event_type: str) -> list[Subscription]:
    """The subscriptions an event of ``event_type`` fans out into, in registration order."""
    return [sub for sub in _SUBSCRIPTIONS.values() if event_type in sub.event_types]


def subscription(name: str) -> Subscription | None:
    return _SUBSCRIPTIONS.get(name)


class NotProjectedYet(RuntimeError):
    """The event has not been applied to the customer yet: the subscriber's run is
    retried (with the pipeline's backoff) instead of acting on a stale state."""


# --- reads subscribers may make --------------------------------------------------------


@dataclass(frozen=True)
class EventSummary:
    event_id: str
    type: str
    created: datetime | None


def recent_events(stripe_customer_id: str, *, limit: int = 5) -> list[EventSummary]:
    """The customer's newest Stripe events (by Stripe's ``created``), for ticket bodies."""
    from billing.models import StripeEvent

    if not stripe_customer_id:
        return []
    rows = (
        StripeEvent.objects.filter(stripe_customer_id=stripe_customer_id)
        .order_by("-created", "-id")
        .values_list("stripe_id", "type", "created")[:limit]
    )
    return [EventSummary(event_id=row[0] or "", type=row[1], created=row[2]) for row in rows]
