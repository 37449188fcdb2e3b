"""Correctly shaped Stripe events built from Stripe's own example objects.

``stripe_fixtures/fixtures3.json`` (next to this module; a copy of Stripe's
``openapi/fixtures3.json``, see its README) holds one example of every Stripe resource
as the API returns it. Events localstripe never sends (``invoice.payment_failed`` for a
renewal, ``charge.refunded``, ``charge.dispute.*``, ``customer.subscription.updated`` ...)
are built from those shapes, with ids replaced by objects that exist in the test's (or
the demo's) world. ``devkit.signing`` signs them as Stripe does.

The examples are in the newest shape (stripe/openapi at 2026-08-21, a dahlia version), and
so are the objects built here. :func:`event` renders an event in an API version: by
default ``STRIPE_API_VERSION`` (the newest shape); ``api_version=LEGACY`` renders the same
objects as an endpoint pinned to 2024-06-20 would receive them (period on the
subscription, ``invoice.subscription``/``paid``/``charge``/``payment_intent``,
``charge.invoice``, ``payment_intent.invoice``), from the values the builders keep aside
for it. :func:`thin_event` builds a thin ``v1.*`` event of an event destination.

No pytest here: ``manage.py demo_stripe_seed`` and the benchmarks use the same builders
as the test suite.
"""

from __future__ import annotations

import copy
import itertools
import json
import time
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parent / "stripe_fixtures" / "fixtures3.json"
_counter = itertools.count(1)

# The oldest API version we accept: its shapes are rendered from the newest ones.
LEGACY = "2024-06-20"
# What an object's 2024-06-20 rendering has that its newest shape no longer carries
# (invoice.charge, payment_intent.invoice ...): kept aside on the object under this key,
# used or dropped by :func:`event`.
_LEGACY_FIELDS = "__legacy_fields__"


def newest_version() -> str:
    """The version the builders render by default: the one the project speaks."""
    from django.conf import settings

    return settings.STRIPE_API_VERSION


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
    api_version: str | None = None,
    account: str | None = None,
) -> dict[str, Any]:
    """A Stripe event envelope around ``obj``, shaped like Stripe's example event and
    rendered in ``api_version`` (default: the newest, ``STRIPE_API_VERSION``).
    ``account``: the connected account it happened on (what a Connect endpoint receives,
    e.g. a seller's ``payout.failed``)."""
    version = api_version or newest_version()
    envelope = example("event")
    envelope.update(
        {
            "id": event_id or new_id("evt"),
            "type": event_type,
            "created": int(time.time()) if created is None else created,
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "api_version": version,
            "data": {"object": render(obj, version)},
        }
    )
    if previous_attributes is not None:
        envelope["data"]["previous_attributes"] = previous_attributes
    envelope.pop("account", None)
    if account:
        envelope["account"] = account
    return envelope


def render(obj: dict[str, Any], version: str) -> dict[str, Any]:
    """``obj`` (a builder's newest-shape object) as the API renders it in ``version``."""
    out = copy.deepcopy(obj)
    legacy = out.pop(_LEGACY_FIELDS, {})
    if version >= "2025-03-31":
        return out
    kind = out.get("object")
    if kind == "invoice_payment":
        raise ValueError(f"InvoicePayment objects do not exist in {version}")
    if kind == "subscription":
        for item in out["items"]["data"]:
            start = item.pop("current_period_start", None)
            end = item.pop("current_period_end", None)
            out.setdefault("current_period_start", start)
            out.setdefault("current_period_end", end)
    elif kind == "invoice":
        parent = out.pop("parent", None) or {}
        if not out.get("subscription"):
            out["subscription"] = (parent.get("subscription_details") or {}).get("subscription")
        out.setdefault("paid", out.get("status") == "paid")
        out.setdefault("charge", legacy.get("charge"))
        out.setdefault("payment_intent", legacy.get("payment_intent"))
        for line in (out.get("lines") or {}).get("data") or []:
            line.pop("parent", None)
            line.setdefault("subscription", out["subscription"])
    elif kind in ("charge", "payment_intent"):
        out.setdefault("invoice", legacy.get("invoice"))
    return out


def _iso(seconds: int) -> str:
    return (
        datetime.fromtimestamp(seconds, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )


_URL_PATHS = {
    "customer": "customers",
    "subscription": "subscriptions",
    "invoice": "invoices",
    "charge": "charges",
    "payment_intent": "payment_intents",
    "dispute": "disputes",
    "invoice_payment": "invoice_payments",
}


def thin_event(
    event_type: str,
    related_type: str,
    related_id: str,
    *,
    created: int | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """A thin event as an event destination delivers it (``object: v2.core.event``): the
    type, an RFC 3339 ``created`` and a reference to the object, no snapshot, no version.
    """
    return {
        "id": event_id or new_id("evt"),
        "object": "v2.core.event",
        "type": event_type,
        "created": _iso(int(time.time()) if created is None else created),
        "livemode": False,
        "context": None,
        "reason": {"type": "request", "request": {"id": new_id("req"), "idempotency_key": None}},
        "related_object": {
            "id": related_id,
            "type": related_type,
            "url": f"/v1/{_URL_PATHS.get(related_type, related_type + 's')}/{related_id}",
        },
    }


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
    charge: str | None = None,
    payment_intent: str | None = None,
    customer_email: str | None = None,
) -> dict[str, Any]:
    """An invoice (one line, for the subscription when given) in ``status``, in the
    newest shape: its subscription under ``parent``, no ``paid``, and its ``charge`` and
    ``payment_intent`` kept aside for a 2024-06-20 rendering (the newest names them only
    through InvoicePayments)."""
    obj = example("invoice")
    invoice_id = invoice_id or new_id("in")
    now = int(time.time())
    period_end = period_end or now
    period_start = period_start or period_end - 30 * 86400
    paid = status == "paid"
    obj["parent"] = (
        {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": subscription_id},
        }
        if subscription_id
        else None
    )
    obj["from_invoice"] = None
    obj["last_finalization_error"] = None
    line = obj["lines"]["data"][0]
    line.pop("subscription", None)
    line.update(
        {
            "id": new_id("il"),
            "invoice": invoice_id,
            "amount": amount,
            "subtotal": amount,
            "currency": currency,
            "description": "Subscription" if subscription_id else line["description"],
            "period": {"start": period_start, "end": period_end},
            "parent": {
                "type": "subscription_item_details",
                "invoice_item_details": None,
                "subscription_item_details": {
                    "invoice_item": None,
                    "proration": False,
                    "proration_details": {"credited_items": None},
                    "subscription": subscription_id,
                    "subscription_item": None,
                },
            }
            if subscription_id
            else None,
        }
    )
    obj["lines"].update({"data": [line], "url": f"/v1/invoices/{invoice_id}/lines"})
    obj.update(
        {
            "id": invoice_id,
            "customer": customer_id,
            "customer_email": customer_email,
            "status": status,
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
            _LEGACY_FIELDS: {"charge": charge, "payment_intent": payment_intent},
        }
    )
    obj.pop("subscription", None)
    return obj


def charge(
    customer_id: str,
    *,
    amount: int = 2000,
    amount_refunded: int = 0,
    charge_id: str | None = None,
    payment_intent: str | None = None,
    payment_method: str | None = None,
    invoice_id: str | None = None,
    email: str | None = None,
    destination: str | None = None,
    application_fee_amount: int | None = None,
) -> dict[str, Any]:
    """A succeeded card charge; the example's references to objects that exist only in
    Stripe's documentation (balance transaction, source, card, the placeholder connected
    account) are cleared. ``invoice_id`` is its invoice in a 2024-06-20 rendering (the
    newest shape no longer names it); ``email`` the billing details' address;
    ``destination`` a connected account it pays (a marketplace destination charge)."""
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
            "billing_details": {**obj["billing_details"], "email": email},
            "transfer_data": {"amount": None, "destination": destination} if destination else None,
            "application_fee_amount": application_fee_amount,
            "on_behalf_of": None,
            _LEGACY_FIELDS: {"invoice": invoice_id},
        }
    )
    return obj


def payment_intent(
    customer_id: str,
    *,
    status: str = "succeeded",
    amount: int = 2000,
    pi_id: str | None = None,
    latest_charge: str | None = None,
    invoice_id: str | None = None,
    destination: str | None = None,
    application_fee_amount: int | None = None,
) -> dict[str, Any]:
    """A payment intent in ``status``; ``invoice_id`` is its invoice in a 2024-06-20
    rendering (since basil only its InvoicePayment names the invoice); ``destination``
    a connected account it pays (the example's placeholder account is cleared)."""
    obj = example("payment_intent")
    obj.update(
        {
            "id": pi_id or new_id("pi"),
            "customer": customer_id,
            "amount": amount,
            "amount_received": amount if status == "succeeded" else 0,
            "currency": "usd",
            "status": status,
            "livemode": False,
            "latest_charge": latest_charge,
            "last_payment_error": None
            if status == "succeeded"
            else {"type": "card_error", "code": "card_declined"},
            "next_action": None,
            "canceled_at": None,
            "transfer_data": {"destination": destination} if destination else None,
            "application_fee_amount": application_fee_amount,
            "on_behalf_of": None,
            _LEGACY_FIELDS: {"invoice": invoice_id},
        }
    )
    return obj


def invoice_payment(
    invoice_obj: dict[str, Any],
    *,
    payment_intent: str | None = None,
    status: str = "paid",
    amount: int | None = None,
) -> dict[str, Any]:
    """An InvoicePayment (basil and later) of ``invoice_obj``: by default its whole amount,
    paid through ``payment_intent``."""
    amount = invoice_obj["amount_due"] if amount is None else amount
    now = int(time.time())
    obj = example("invoice_payment")
    obj.update(
        {
            "id": new_id("inpay"),
            "invoice": invoice_obj["id"],
            "amount_requested": invoice_obj["amount_due"],
            "amount_paid": amount if status == "paid" else None,
            "currency": invoice_obj.get("currency") or "usd",
            "status": status,
            "is_default": True,
            "livemode": False,
            "created": now,
            "payment": {"type": "payment_intent", "payment_intent": payment_intent or new_id("pi")},
            "status_transitions": {
                "canceled_at": None,
                "paid_at": now if status == "paid" else None,
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


def checkout_session(
    *,
    payment_intent: str | None,
    amount: int,
    customer_id: str | None = None,
    mode: str = "payment",
    payment_status: str = "paid",
    session_id: str | None = None,
    email: str | None = "buyer@example.test",
    currency: str = "usd",
) -> dict[str, Any]:
    """A completed Checkout session (``mode=payment``: a one-time payment, an order)."""
    obj = example("checkout.session")
    obj.update(
        {
            "id": session_id or new_id("cs_test"),
            "mode": mode,
            "status": "complete",
            "payment_status": payment_status,
            "payment_intent": payment_intent,
            "customer": customer_id,
            "amount_total": amount,
            "amount_subtotal": amount,
            "currency": currency,
            "livemode": False,
            "subscription": None,
            "invoice": None,
            "url": None,
            "customer_details": {**obj["customer_details"], "email": email},
        }
    )
    return obj


def refund(
    charge_obj: dict[str, Any], *, amount: int, status: str = "succeeded", refund_id: str = ""
) -> dict[str, Any]:
    """A refund of ``charge_obj`` (refund.created / refund.updated objects)."""
    obj = example("refund")
    obj.update(
        {
            "id": refund_id or new_id("re"),
            "charge": charge_obj["id"],
            "payment_intent": charge_obj.get("payment_intent"),
            "amount": amount,
            "currency": charge_obj.get("currency") or "usd",
            "status": status,
            "balance_transaction": None,
            "transfer_reversal": new_id("trr") if charge_obj.get("transfer") else None,
        }
    )
    return obj


def payout(
    *,
    amount: int = 1100,
    status: str = "failed",
    failure_code: str | None = "account_closed",
    payout_id: str | None = None,
) -> dict[str, Any]:
    """A payout (of a connected account when its event carries ``account``)."""
    obj = example("payout")
    failed = status == "failed"
    obj.update(
        {
            "id": payout_id or new_id("po"),
            "amount": amount,
            "status": status,
            "livemode": False,
            "balance_transaction": None,
            "failure_code": failure_code if failed else None,
            "failure_message": "The bank account has been closed." if failed else None,
        }
    )
    return obj
