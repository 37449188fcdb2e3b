"""Reads of the pipeline's state (for commands, the console and the state API)."""

from __future__ import annotations

from typing import Any

from django.forms.models import model_to_dict

from billing.models import HandlerRun, StripeEvent
from customers.models import Customer


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def customer_state(*, stripe_customer_id: str, limit: int = 20) -> dict[str, Any] | None:
    """The canonical record of a Stripe customer with its recent events and handler runs;
    None when no canonical customer is linked to that id."""
    customer = Customer.objects.filter(stripe_customer_id=stripe_customer_id).first()
    if customer is None:
        return None
    record = {k: _iso(v) for k, v in model_to_dict(customer).items()}
    record.update(id=str(customer.pk), created_at=_iso(customer.created_at),
                  updated_at=_iso(customer.updated_at))
    events = list(StripeEvent.objects.filter(stripe_customer_id=stripe_customer_id)
                  .order_by("-created", "-id")[:limit])
    runs = (HandlerRun.objects.filter(event__in=events).select_related("event")
            .order_by("-event__created", "event_id", "id"))
    return {
        "customer": record,
        "events": [{
            "id": e.stripe_id, "type": e.type, "created": _iso(e.created),
            "received_at": _iso(e.received_at), "status": e.status,
            "deliveries": e.delivery_count,
        } for e in events],
        "handler_runs": [{
            "event": r.event.stripe_id, "handler": r.handler, "status": r.status,
            "attempts": r.attempts, "note": r.note, "last_error": r.last_error,
            "next_attempt_at": _iso(r.next_attempt_at) if r.status == "failed" else None,
            "finished_at": _iso(r.finished_at),
        } for r in runs],
    }
