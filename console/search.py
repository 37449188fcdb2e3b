"""Find anyone: one box for an email, a name, any Stripe id, a CRM or helpdesk id.

Stripe ids other than the customer's (``sub_``, ``in_``, ``ch_``, ``pi_``, ``re_``,
``dp_``…) are resolved through the event inbox: the event whose object it is (indexed
``object_id``) or, failing that, an event whose object points at it (an invoice's charge
and payment intent, a dispute's or refund's charge), and that event's Stripe customer.
"""

from __future__ import annotations

import re
import uuid

from django.db.models import Q, QuerySet

from billing.models import Order, StripeEvent
from customers.models import Customer

MAX_RESULTS = 50
_STRIPE_ID = re.compile(r"^[a-z]{2,5}_[A-Za-z0-9_]+$")
# Keys of a Stripe object that name another object, looked up when no event is *about*
# the id itself.
_POINTERS = ("charge", "payment_intent", "invoice", "subscription", "latest_charge")


def _stripe_customers_for(ref: str) -> set[str]:
    ids = set(
        StripeEvent.objects.filter(object_id=ref)
        .exclude(stripe_customer_id="")
        .values_list("stripe_customer_id", flat=True)[:10]
    )
    if ids:
        return ids
    match = Q()
    for key in _POINTERS:
        match |= Q(**{f"payload__data__object__{key}": ref})
    # A refund id inside a charge.refunded event's refund list.
    match |= Q(payload__data__object__refunds__data__contains=[{"id": ref}])
    return set(
        StripeEvent.objects.filter(match)
        .exclude(stripe_customer_id="")
        .values_list("stripe_customer_id", flat=True)[:10]
    )


def find_customers(query: str) -> QuerySet[Customer]:
    """Customers matching ``query``, newest first (at most ``MAX_RESULTS``)."""
    q = (query or "").strip()
    if not q or len(q) > 255:
        return Customer.objects.none()
    match = (
        Q(stripe_customer_id=q)
        | Q(subscription_id=q)
        | Q(latest_invoice_id=q)
        | Q(crm_contact_id=q)
        | Q(helpdesk_user_id=q)
        | Q(product_user_id=q)
        | Q(stripe_account_id=q)
    )
    try:
        match |= Q(pk=uuid.UUID(q))
    except ValueError:
        pass
    if _STRIPE_ID.match(q):
        stripe_ids = _stripe_customers_for(q)
        if stripe_ids:
            match |= Q(stripe_customer_id__in=stripe_ids)
    else:
        match |= Q(email__iexact=q) | Q(email__icontains=q) | Q(name__icontains=q)
    return Customer.objects.filter(match).order_by("-created_at")[:MAX_RESULTS]


def customer_ids_for(query: str) -> list[uuid.UUID]:
    """The admin list's search adds these (Stripe ids through the inbox)."""
    q = (query or "").strip()
    if not _STRIPE_ID.match(q):
        return []
    return list(find_customers(q).values_list("pk", flat=True))


def find_orders(query: str) -> QuerySet[Order]:
    """Orders a Stripe id names: the payment intent, charge or Checkout session, the
    seller's connected account (``acct_``), the transfer, a refund or a dispute."""
    q = (query or "").strip()
    if not q or len(q) > 255 or not _STRIPE_ID.match(q):
        return Order.objects.none()
    match = (
        Q(payment_intent_id=q)
        | Q(charge_id=q)
        | Q(checkout_session_id=q)
        | Q(seller_account_id=q)
        | Q(transfer_id=q)
        | Q(facts__refunds__has_key=q)
        | Q(facts__disputes__has_key=q)
    )
    return Order.objects.filter(match).select_related("buyer", "seller")[:MAX_RESULTS]
