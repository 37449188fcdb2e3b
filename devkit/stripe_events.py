"""Correctly shaped Stripe events built from Stripe's own example objects.

``stripe_fixtures/fixtures3.json`` (next to this module; a copy of Stripe's
``openapi/fixtures3.json``, see its README) holds one example of every Stripe resource
as the API returns it. Events localstripe never sends (``invoice.payment_failed`` for a
renewal, ``charge.refunded``, ``charge.dispute.*``, ``customer.subscription.updated`` ...)
are built from those shapes, with ids replaced by objects that exist in the test's (or
the demo's) world. ``devkit.signing`` signs them as Stripe does.

No pytest here: ``manage.py demo_stripe_seed`` and the benchmarks use the same builders
as the test suite.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "stripe_fixtures" / "fixtures3.json"
_counter = itertools.count(1)


@cache
def _fixtures() -> dict[str, Any]:
    data = json.loads(FIXTURES.read_text())
    return data.get("resources", data)


def example(resource: str) -> dict[str, Any]:
    """A deep copy of Stripe's example object for ``resource`` (e.g. "invoice")."""
    return copy.deepcopy(_fixtures()[resource])


def new_id(prefix: str) -> str:
    return f"{prefix}_test{int(time.time() * 1000) % 10**9}{next(_counter):06d}"


def event(
    event_type: str,
    obj: dict[str, Any],
    *,
    created: int | None = None,
    event_id: str | None = None,
    previous_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A Stripe event envelope around ``obj``, shaped like Stripe's example event."""
    envelope = example("event")
    envelope.update(
        {
            "id": event_id or new_id("evt"),
            "type": event_type,
            "created": int(time.time()) if created is None else created,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "data": {"object": obj},
        }
    )
    if previous_attributes is not None:
        envelope["data"]["previous_attributes"] = previous_attributes
    envelope.pop("account", None)
    return envelope


def customer(
    customer_id: str | None = None, *, email: str = "ada@example.test", name: str = "Ada"
) -> dict[str, Any]:
    obj = example("customer")
    obj.update(
        {"id": customer_id or new_id("cus"), "email": email, "name": name, "livemode": False}
    )
    return obj


def subscription(
    customer_id: str,
    *,
    status: str = "active",
    sub_id: str | None = None,
    plan_id: str = "plan_pro",
    amount: int = 2000,
    period_end: int | None = None,
    cancel_at_period_end: bool = False,
    latest_invoice: str | None = None,
    nickname: str | None = None,
    product: str | None = None,
    interval: str = "month",
    period_start: int | None = None,
    trial_end: int | None = None,
    currency: str = "usd",
    item_id: str | None = None,
) -> dict[str, Any]:
    """A subscription on one plan. ``product`` names the plan's product and ``item_id``
    the subscription item (give the real ones when they exist: Stripe keeps an item's id
    for the life of the subscription, and a mirror fetching the product finds it)."""
    obj = example("subscription")
    sub_id = sub_id or new_id("sub")
    period_end = period_end or int(time.time()) + 30 * 86400
    period_start = period_start or period_end - 30 * 86400
    nickname = nickname if nickname is not None else plan_id.replace("plan_", "").title()
    item = copy.deepcopy(obj["items"]["data"][0])
    item["price"].update(
        {
            "id": plan_id,
            "unit_amount": amount,
            "unit_amount_decimal": str(amount),
            "currency": currency,
            "nickname": nickname,
            "livemode": False,
            "recurring": {**item["price"]["recurring"], "interval": interval, "interval_count": 1},
        }
    )
    item["plan"].update(
        {
            "id": plan_id,
            "amount": amount,
            "amount_decimal": str(amount),
            "currency": currency,
            "interval": interval,
            "interval_count": 1,
            "nickname": nickname,
            "livemode": False,
            "billing_scheme": "per_unit",
            "created": period_start,
        }
    )
    if product is not None:
        item["price"]["product"] = product
        item["plan"]["product"] = product
    item.update(
        {
            "id": item_id or new_id("si"),
            "subscription": sub_id,
            "current_period_start": period_start,
            "current_period_end": period_end,
        }
    )
    obj.update(
        {
            "id": sub_id,
            "customer": customer_id,
            "status": status,
            "livemode": False,
            "cancel_at_period_end": cancel_at_period_end,
            "latest_invoice": latest_invoice,
            "currency": currency,
            "start_date": period_start,
            "billing_cycle_anchor": period_start,
            "created": period_start,
            "items": {
                "object": "list",
                "data": [item],
                "has_more": False,
                "url": f"/v1/subscription_items?subscription={sub_id}",
            },
        }
    )
    if trial_end is not None:
        obj.update({"trial_start": period_start, "trial_end": trial_end})
    if status == "canceled":
        obj.update({"canceled_at": period_start, "ended_at": int(time.time())})
    return obj


def invoice(
    customer_id: str,
    *,
    subscription_id: str | None,
    status: str = "paid",
    invoice_id: str | None = None,
    amount: int = 2000,
    billing_reason: str = "subscription_cycle",
    currency: str = "usd",
    period_start: int | None = None,
    period_end: int | None = None,
) -> dict[str, Any]:
    """An invoice (one line, for the subscription when given) in ``status``."""
    obj = example("invoice")
    invoice_id = invoice_id or new_id("in")
    now = int(time.time())
    period_end = period_end or now
    period_start = period_start or period_end - 30 * 86400
    paid = status == "paid"
    obj["parent"] = {
        "type": "subscription_details",
        "quote_details": None,
        "subscription_details": {"metadata": {}, "subscription": subscription_id},
    }
    obj["from_invoice"] = None
    obj["last_finalization_error"] = None
    line = obj["lines"]["data"][0]
    line.update(
        {
            "id": new_id("il"),
            "invoice": invoice_id,
            "subscription": subscription_id,
            "amount": amount,
            "subtotal": amount,
            "currency": currency,
            "description": "Subscription" if subscription_id else line["description"],
            "period": {"start": period_start, "end": period_end},
            "parent": None,
        }
    )
    obj["lines"].update({"data": [line], "url": f"/v1/invoices/{invoice_id}/lines"})
    obj.update(
        {
            "id": invoice_id,
            "customer": customer_id,
            "subscription": subscription_id,
            "status": status,
            "paid": paid,
            "amount_due": amount,
            "amount_paid": amount if paid else 0,
            "amount_remaining": 0 if paid else amount,
            "subtotal": amount,
            "subtotal_excluding_tax": amount,
            "total": amount,
            "total_excluding_tax": amount,
            "currency": currency,
            "amount_overpaid": 0,
            "billing_reason": billing_reason,
            "livemode": False,
            "attempt_count": 1 if paid else 2,
            "attempted": True,
            "period_start": period_start,
            "period_end": period_end,
            "created": period_end,
            "effective_at": period_end,
            "due_date": None,
            "next_payment_attempt": None if paid else now + 3 * 86400,
            "status_transitions": {
                "finalized_at": period_end,
                "marked_uncollectible_at": None,
                "paid_at": now if paid else None,
                "voided_at": None,
            },
            "shipping_cost": None,
        }
    )
    return obj


def charge(
    customer_id: str,
    *,
    amount: int = 2000,
    amount_refunded: int = 0,
    charge_id: str | None = None,
    payment_intent: str | None = None,
    payment_method: str | None = None,
) -> dict[str, Any]:
    """A succeeded card charge; the example's references to objects that exist only in
    Stripe's documentation (balance transaction, source, card) are cleared."""
    obj = example("charge")
    charge_id = charge_id or new_id("ch")
    obj.update(
        {
            "id": charge_id,
            "customer": customer_id,
            "amount": amount,
            "amount_captured": amount,
            "amount_refunded": amount_refunded,
            "refunded": amount_refunded >= amount,
            "currency": "usd",
            "livemode": False,
            "payment_intent": payment_intent,
            "paid": True,
            "status": "succeeded",
            "captured": True,
            "balance_transaction": None,
            "source": None,
            "payment_method": payment_method,
            "disputed": False,
            "refunds": {
                "object": "list",
                "data": [],
                "has_more": False,
                "url": f"/v1/charges/{charge_id}/refunds",
            },
        }
    )
    return obj


def dispute(charge_obj: dict[str, Any], *, status: str = "needs_response") -> dict[str, Any]:
    """A dispute of ``charge_obj`` (it names its customer only through the charge)."""
    obj = example("dispute")
    obj.update(
        {
            "id": new_id("dp"),
            "charge": charge_obj["id"],
            "amount": charge_obj["amount"],
            "currency": "usd",
            "status": status,
            "livemode": False,
            "payment_intent": charge_obj.get("payment_intent"),
        }
    )
    return obj
