"""Correctly shaped Stripe events built from Stripe's own example objects.

``../shared/vendor-api/stripe/fixtures3.json`` holds one example of every Stripe resource
as the API returns it. Events localstripe never sends (``invoice.payment_failed``,
``charge.refunded``, ``charge.dispute.*``, ``customer.subscription.updated`` ...) are built
from those shapes, with ids replaced by objects that exist in the test's world.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "vendor-api" / "stripe" / "fixtures3.json"
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


def event(event_type: str, obj: dict[str, Any], *, created: int | None = None,
          event_id: str | None = None, previous_attributes: dict[str, Any] | None = None) -> dict[str, Any]:
    """A Stripe event envelope around ``obj``, shaped like Stripe's example event."""
    envelope = example("event")
    envelope.update({
        "id": event_id or new_id("evt"),
        "type": event_type,
        "created": int(time.time()) if created is None else created,
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "data": {"object": obj},
    })
    if previous_attributes is not None:
        envelope["data"]["previous_attributes"] = previous_attributes
    envelope.pop("account", None)
    return envelope


def customer(customer_id: str | None = None, *, email: str = "ada@example.test", name: str = "Ada") -> dict[str, Any]:
    obj = example("customer")
    obj.update({"id": customer_id or new_id("cus"), "email": email, "name": name, "livemode": False})
    return obj


def subscription(customer_id: str, *, status: str = "active", sub_id: str | None = None,
                 plan_id: str = "plan_pro", amount: int = 2000, period_end: int | None = None,
                 cancel_at_period_end: bool = False, latest_invoice: str | None = None) -> dict[str, Any]:
    obj = example("subscription")
    sub_id = sub_id or new_id("sub")
    period_end = period_end or int(time.time()) + 30 * 86400
    nickname = plan_id.replace("plan_", "").title()
    item = copy.deepcopy(obj["items"]["data"][0])
    item["price"].update({"id": plan_id, "unit_amount": amount, "unit_amount_decimal": str(amount),
                          "currency": "usd", "nickname": nickname, "livemode": False,
                          "recurring": {**item["price"]["recurring"], "interval": "month",
                                        "interval_count": 1}})
    item["plan"].update({"id": plan_id, "amount": amount, "amount_decimal": str(amount),
                         "currency": "usd", "interval": "month", "interval_count": 1,
                         "nickname": nickname, "livemode": False, "billing_scheme": "per_unit"})
    item.update({"id": new_id("si"), "subscription": sub_id,
                 "current_period_start": period_end - 30 * 86400,
                 "current_period_end": period_end})
    obj.update({
        "id": sub_id, "customer": customer_id, "status": status, "livemode": False,
        "cancel_at_period_end": cancel_at_period_end, "latest_invoice": latest_invoice,
        "items": {"object": "list", "data": [item], "has_more": False, "url": "/v1/subscription_items"},
    })
    return obj


def invoice(customer_id: str, *, subscription_id: str | None, status: str = "paid",
            invoice_id: str | None = None, amount: int = 2000,
            billing_reason: str = "subscription_cycle") -> dict[str, Any]:
    obj = example("invoice")
    obj["parent"] = {"type": "subscription_details", "quote_details": None,
                     "subscription_details": {"metadata": {}, "subscription": subscription_id}}
    obj.update({
        "id": invoice_id or new_id("in"), "customer": customer_id, "subscription": subscription_id,
        "status": status, "paid": status == "paid", "amount_due": amount,
        "amount_paid": amount if status == "paid" else 0, "currency": "usd",
        "billing_reason": billing_reason, "livemode": False,
        "attempt_count": 1 if status == "paid" else 2,
    })
    return obj


def charge(customer_id: str, *, amount: int = 2000, amount_refunded: int = 0,
           charge_id: str | None = None, payment_intent: str | None = None) -> dict[str, Any]:
    obj = example("charge")
    obj.update({
        "id": charge_id or new_id("ch"), "customer": customer_id, "amount": amount,
        "amount_refunded": amount_refunded, "refunded": amount_refunded >= amount,
        "currency": "usd", "livemode": False, "payment_intent": payment_intent, "paid": True,
        "status": "succeeded",
    })
    return obj


def dispute(charge_obj: dict[str, Any], *, status: str = "needs_response") -> dict[str, Any]:
    obj = example("dispute")
    obj.update({"id": new_id("dp"), "charge": charge_obj["id"], "amount": charge_obj["amount"],
                "currency": "usd", "status": status, "livemode": False,
                "payment_intent": charge_obj.get("payment_intent")})
    return obj
