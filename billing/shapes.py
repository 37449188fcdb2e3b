"""One reading of Stripe's object shapes, for every API version we accept.

Stripe changes the shape of the objects the pipeline reads from one API version to the
next, and an event keeps the shape of the version it was rendered in: events already
stored, events from an endpoint pinned to an older version and events in our pinned
version (``STRIPE_API_VERSION``) must all be read alike. Every reader of a Stripe object
(projection, status map, finance pages, confirmations, support rules and content, CRM,
the dj-stripe mirror) asks this module, never the object's fields directly, for:

============================  ======================================  ===========================================
what                          2024-06-20 … 2025-02-24.acacia          2025-03-31.basil … newest (dahlia)
============================  ======================================  ===========================================
a subscription's period       ``current_period_start/end``            on each item (``items.data[].current_period_*``)
an invoice's subscription     ``subscription``                        ``parent.subscription_details.subscription``
is an invoice paid            ``paid``                                ``status == "paid"``
an invoice's charge / PI      ``charge``, ``payment_intent``          InvoicePayment objects (``payments``, expandable)
a charge's invoice            ``charge.invoice``                      removed: through the PI's InvoicePayment
a payment intent's invoice    ``payment_intent.invoice``              removed: InvoicePayment list by payment intent
an invoice was paid (event)   ``invoice.paid``                        also ``invoice_payment.paid``
thin events (``v1.*``)        –                                       a reference only: fetched in the job
============================  ======================================  ===========================================

The readers at the top are pure (plain dicts in, plain values out) and are re-exported by
``billing/events.py`` for crm_sync and support. A reader answers ``None`` where the shape
does not say (a newer version dropped the field) and ``""`` where it says "none". The
lookups at the bottom fill what a newer shape no longer carries: first from what we
already hold (earlier events, dj-stripe's mirror), then with one call through the billing
adapter (``billing/adapters/stripe_client.py``, counted in ``api_calls``).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# The first API version whose objects have the newer shapes above.
BASIL = "2025-03-31.basil"
# The oldest API version whose shapes we read (and test): older events may lack fields.
OLDEST_SUPPORTED = "2024-06-20"

THIN_OBJECT = "v2.core.event"
THIN_PREFIX = "v1."

ENDED_SUBSCRIPTION_STATUSES = ("canceled", "incomplete_expired")


# --- pure readers -----------------------------------------------------------------------


def timestamp(value: Any) -> datetime | None:
    """A Stripe timestamp (unix seconds) as an aware datetime; None stays None."""
    if value in (None, ""):
        return None
    return datetime.fromtimestamp(int(value), tz=UTC)


def ref_id(value: Any) -> str:
    """The id of an expandable reference: a string id, an expanded object, or nothing."""
    if isinstance(value, Mapping):
        return str(value.get("id") or "")
    return value if isinstance(value, str) else ""


def object_type(obj: Mapping[str, Any]) -> str:
    return str(obj.get("object") or "")


def customer_id(obj: Mapping[str, Any]) -> str:
    """The Stripe customer an object names (its own id for a customer). Disputes and
    invoice payments name none: see :func:`resolve_customer_id`."""
    if object_type(obj) == "customer":
        return str(obj.get("id") or "")
    return ref_id(obj.get("customer"))


def email_of(obj: Mapping[str, Any]) -> str:
    """An email address the object carries for its customer: the customer's own, the
    invoice's ``customer_email``, a checkout's ``customer_details``, a charge's billing
    details or receipt address (payment intents: ``receipt_email``)."""
    if object_type(obj) == "customer":
        return str(obj.get("email") or "")
    details = obj.get("customer_details") or {}
    billing = obj.get("billing_details") or {}
    return str(
        details.get("email")
        or obj.get("customer_email")
        or billing.get("email")
        or obj.get("receipt_email")
        or ""
    )


def subscription_items(sub: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((sub.get("items") or {}).get("data") or [])


def subscription_plan(sub: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """(subscription item id, its plan or price) of the subscription's first item."""
    items = subscription_items(sub)
    if not items:
        return "", sub.get("plan") or {}
    item = items[0]
    return str(item.get("id") or ""), item.get("plan") or item.get("price") or {}


def subscription_period(sub: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """(current period start, end) as Stripe timestamps. Basil moved the period onto
    the items (each may have its own): the subscription's period is then the span of
    its items' periods, so "paid until" is the last item's end."""
    start, end = sub.get("current_period_start"), sub.get("current_period_end")
    if start is not None or end is not None:
        return start, end
    starts = [
        i["current_period_start"] for i in subscription_items(sub) if i.get("current_period_start")
    ]
    ends = [i["current_period_end"] for i in subscription_items(sub) if i.get("current_period_end")]
    return (min(starts) if starts else None), (max(ends) if ends else None)


def subscription_period_end(sub: Mapping[str, Any]) -> int | None:
    return subscription_period(sub)[1]


def plan_name(plan: Mapping[str, Any]) -> str:
    """A plan's or price's nickname, else its amount per interval ("20.00 USD/month")."""
    from config.money import format_money

    name = str(plan.get("nickname") or "")
    if not name and (plan.get("amount") is not None or plan.get("unit_amount") is not None):
        amount = plan.get("unit_amount", plan.get("amount")) or 0
        interval = (plan.get("recurring") or {}).get("interval") or plan.get("interval") or ""
        name = f"{format_money(amount, plan.get('currency') or '')}/{interval}".strip("/ ")
    return name


def subscription_summary(sub: Mapping[str, Any]) -> dict[str, Any]:
    """What a subscription snapshot says about the customer, as plain values (period end
    a Stripe timestamp): id, Stripe status, plan, period end, cancel-at-period-end,
    latest invoice, and the subscription's own ``created``."""
    _, plan = subscription_plan(sub)
    return {
        "id": str(sub.get("id") or ""),
        "status": str(sub.get("status") or ""),
        "created": sub.get("created") if isinstance(sub.get("created"), int) else 0,
        "plan_id": str(plan.get("id") or ""),
        "plan_name": plan_name(plan),
        "period_end": subscription_period_end(sub),
        "cancel_at_period_end": bool(sub.get("cancel_at_period_end")),
        "latest_invoice": ref_id(sub.get("latest_invoice")),
    }


def invoice_subscription_id(invoice: Mapping[str, Any]) -> str:
    """The subscription an invoice bills ("" for a one-off invoice)."""
    parent = invoice.get("parent") or {}
    found = ref_id((parent.get("subscription_details") or {}).get("subscription"))
    if found:
        return found
    found = ref_id(invoice.get("subscription"))
    if found:
        return found
    # Basil lines name their subscription in the line's parent.
    for line in (invoice.get("lines") or {}).get("data") or []:
        line_parent = line.get("parent") or {}
        for key in ("subscription_item_details", "invoice_item_details"):
            found = ref_id((line_parent.get(key) or {}).get("subscription"))
            if found:
                return found
        found = ref_id(line.get("subscription"))
        if found:
            return found
    return ""


def invoice_is_paid(invoice: Mapping[str, Any]) -> bool:
    if "paid" in invoice:
        return bool(invoice.get("paid"))
    return invoice.get("status") == "paid"


def invoice_is_first(invoice: Mapping[str, Any]) -> bool:
    """The first invoice of a subscription (its failure leaves it incomplete)."""
    return invoice.get("billing_reason") == "subscription_create"


def _invoice_payment_refs(payment: Mapping[str, Any]) -> tuple[str, str]:
    """(charge id, payment intent id) of one InvoicePayment's ``payment``."""
    inner = payment.get("payment") or {}
    return ref_id(inner.get("charge")), ref_id(inner.get("payment_intent"))


def invoice_payment_ids(invoice: Mapping[str, Any]) -> tuple[str, str] | None:
    """(charge id, payment intent id) of the invoice's payment, "" where there is none;
    None when the shape does not say (basil and later without ``payments`` expanded)."""
    if "charge" in invoice or "payment_intent" in invoice:
        return ref_id(invoice.get("charge")), ref_id(invoice.get("payment_intent"))
    payments = (invoice.get("payments") or {}).get("data")
    if payments is None:
        return None
    return payment_of(payments)


def payment_of(payments: list[Mapping[str, Any]]) -> tuple[str, str]:
    """The (charge, payment intent) of a list of InvoicePayments: the paid one, else the
    default one, else the first."""
    if not payments:
        return "", ""
    chosen = (
        next((p for p in payments if p.get("status") == "paid"), None)
        or next((p for p in payments if p.get("is_default")), None)
        or payments[0]
    )
    return _invoice_payment_refs(chosen)


def invoice_payment_invoice_id(invoice_payment: Mapping[str, Any]) -> str:
    return ref_id(invoice_payment.get("invoice"))


def invoice_payment_pays_in_full(invoice_payment: Mapping[str, Any]) -> bool:
    """An InvoicePayment that settled what it was asked for (the invoice is then paid,
    unless it was split between several payments)."""
    if invoice_payment.get("status") != "paid":
        return False
    paid, requested = invoice_payment.get("amount_paid"), invoice_payment.get("amount_requested")
    return not isinstance(requested, int) or (isinstance(paid, int) and paid >= requested)


def linked_invoice_id(obj: Mapping[str, Any]) -> str | None:
    """The invoice an object belongs to: an invoice's own id, an InvoicePayment's
    invoice, a charge's or payment intent's ``invoice`` ("" for a one-off payment).
    None when the shape does not say (charges and payment intents since basil)."""
    kind = object_type(obj)
    if kind == "invoice":
        return str(obj.get("id") or "")
    if kind == "invoice_payment":
        return invoice_payment_invoice_id(obj)
    if "invoice" in obj:
        return ref_id(obj.get("invoice"))
    return None


def charge_id_of(obj: Mapping[str, Any]) -> str:
    """The charge an object is about: its own id, a dispute's or refund's charge, an
    invoice's charge when its shape carries it."""
    kind = object_type(obj)
    if kind == "charge":
        return str(obj.get("id") or "")
    if kind == "invoice":
        return (invoice_payment_ids(obj) or ("", ""))[0]
    return ref_id(obj.get("charge"))


# --- event envelopes --------------------------------------------------------------------


def is_thin(payload: Mapping[str, Any]) -> bool:
    """A thin event from an event destination (``object: v2.core.event``): it names the
    object it is about, without a snapshot of it."""
    return payload.get("object") == THIN_OBJECT


def snapshot_type(event_type: str) -> str:
    """The snapshot event type a thin ``v1.*`` event stands for
    (``v1.customer.updated`` -> ``customer.updated``); other types are unchanged."""
    return event_type.removeprefix(THIN_PREFIX)


def thin_related(payload: Mapping[str, Any]) -> tuple[str, str]:
    """(object type, id) a thin event refers to ("" when it refers to none)."""
    related = payload.get("related_object") or {}
    if not isinstance(related, Mapping):
        return "", ""
    kind, object_id = related.get("type"), related.get("id")
    return (
        kind if isinstance(kind, str) else "",
        object_id if isinstance(object_id, str) else "",
    )


def thin_created(value: Any) -> datetime | None:
    """A thin event's ``created`` (an RFC 3339 string) as an aware datetime, truncated to
    the second like a snapshot event's; None when it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).replace(microsecond=0)


# --- dj-stripe 2.11 -----------------------------------------------------------------------


def for_djstripe(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` with the fields dj-stripe 2.11 still reads filled in from their
    newer place: an invoice's ``paid`` (its admin reads it as a required key) and
    ``subscription`` (its foreign key), a subscription's ``current_period_start/end``.
    Nothing is invented: a field the newer shape cannot give is left out."""
    out = copy.deepcopy(dict(obj))
    kind = object_type(obj)
    if kind == "invoice":
        out.setdefault("paid", invoice_is_paid(obj))
        if not out.get("subscription"):
            out["subscription"] = invoice_subscription_id(obj) or None
    elif kind == "subscription":
        start, end = subscription_period(obj)
        if out.get("current_period_start") is None and start is not None:
            out["current_period_start"] = start
        if out.get("current_period_end") is None and end is not None:
            out["current_period_end"] = end
    return out


# --- lookups: what a newer shape no longer carries (billing only) -----------------------


def resolve_customer_id(obj: Mapping[str, Any]) -> str:
    """Like :func:`customer_id`, also for objects that name their customer only through
    another object: a dispute through its charge (or payment intent), an invoice payment
    through its invoice. From an earlier event about that object, dj-stripe's mirror, or,
    last, one Stripe call."""
    found = customer_id(obj)
    if found:
        return found
    kind = object_type(obj)
    if kind == "invoice_payment":
        invoice_id = invoice_payment_invoice_id(obj)
        return customer_id(invoice_object(invoice_id)) if invoice_id else ""
    charge = obj.get("charge")
    if isinstance(charge, Mapping):
        return customer_id(charge)
    if not charge:
        return ""
    from djstripe.models import Charge

    from billing.models import StripeEvent

    # An earlier event about the charge or its payment intent (a dispute names both).
    known = (
        StripeEvent.objects.filter(
            object_id__in=[i for i in (charge, ref_id(obj.get("payment_intent"))) if i]
        )
        .exclude(stripe_customer_id="")
        .values_list("stripe_customer_id", flat=True)
        .first()
    )
    if known:
        return known
    mirrored = Charge.objects.filter(id=charge).values_list("customer__id", flat=True).first()
    if mirrored:
        return mirrored
    from billing.adapters import stripe_client

    return customer_id(stripe_client.retrieve("charge", charge))


def invoice_object(invoice_id: str) -> Mapping[str, Any]:
    """An invoice as we last saw it in an event (any shape), else as Stripe has it now."""
    from billing.models import StripeEvent

    row = (
        StripeEvent.objects.filter(object_id=invoice_id, object_type="invoice")
        .order_by("-created", "-id")
        .values_list("payload", flat=True)
        .first()
    )
    if row:
        obj = (row.get("data") or {}).get("object") or {}
        if obj.get("id") == invoice_id:
            return obj
    from billing.adapters import stripe_client

    return stripe_client.retrieve("invoice", invoice_id)


def invoice_of_payment_intent(payment_intent_id: str) -> str:
    """The invoice a payment intent pays ("" for a one-off payment), through Stripe's
    InvoicePayment list (one call)."""
    from billing.adapters import stripe_client

    payments = stripe_client.invoice_payments(payment_intent=payment_intent_id)
    return invoice_payment_invoice_id(payments[0]) if payments else ""


def payment_of_invoice(invoice_id: str) -> tuple[str, str]:
    """(charge, payment intent) of an invoice, through its InvoicePayments (one call)."""
    from billing.adapters import stripe_client

    return payment_of(stripe_client.invoice_payments(invoice=invoice_id))
