"""Rows for the console tests, created directly as the pipeline, outbox and ticket code
would create them (the contract models of crm_sync and support)."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from billing.models import HandlerRun, RunStatus, StripeEvent
from customers.models import Customer
from delivery.models import OutboxMessage
from support.models import SupportQueue, Ticket

_seq = itertools.count(1)


def stripe_event(
    *,
    customer: Customer | None = None,
    type: str = "invoice.paid",
    received_at: datetime | None = None,
    status: str = "processed",
    delivery_count: int = 1,
    object_id: str = "",
    stripe_id: str | None = "",
    **extra: Any,
) -> StripeEvent:
    n = next(_seq)
    return StripeEvent.objects.create(
        stripe_id=f"evt_console{n:06d}" if stripe_id == "" else stripe_id,
        type=type,
        created=received_at or timezone.now(),
        stripe_customer_id=customer.stripe_customer_id if customer else "",
        object_id=object_id or f"obj_{n}",
        received_at=received_at or timezone.now(),
        status=status,
        delivery_count=delivery_count,
        **extra,
    )


def handler_run(
    event: StripeEvent,
    *,
    handler: str = "customer_projection",
    status: str = RunStatus.SUCCEEDED,
    lag_seconds: float | None = 1.0,
    **extra: Any,
) -> HandlerRun:
    finished = (
        event.received_at + timedelta(seconds=lag_seconds) if lag_seconds is not None else None
    )
    run = HandlerRun.objects.create(
        event=event,
        handler=handler,
        status=status,
        finished_at=finished,
        attempts=extra.pop("attempts", 1),
        **extra,
    )
    # a run is created when its event is processed, right after it arrives
    HandlerRun.objects.filter(pk=run.pk).update(created_at=event.received_at)
    run.created_at = event.received_at
    return run


def outbox(
    *,
    customer: Customer | None,
    channel: str = "crm",
    state: str = "delivered",
    kind: str = "contact_upsert",
    **extra: Any,
) -> OutboxMessage:
    return OutboxMessage.objects.create(
        channel=channel,
        kind=kind,
        customer=customer,
        dedupe_key=f"test:{next(_seq)}",
        state=state,
        **extra,
    )


def ticket(
    *, customer: Customer, queue: str = "billing", subject: str = "Payment failed", **extra: Any
) -> Ticket:
    q, _ = SupportQueue.objects.get_or_create(slug=queue, defaults={"name": queue.title()})
    return Ticket.objects.create(
        customer=customer, queue=q, subject=subject, situation_key=f"test:{next(_seq)}", **extra
    )
