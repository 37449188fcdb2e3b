"""Where an order's state is decided: the order projection, in any delivery order.

An order is one one-time payment: a Checkout session in ``payment`` mode, or a payment
intent (and its charge) that pays no invoice. For a marketplace it is a Connect
*destination charge*: the payment names the seller's connected account
(``transfer_data.destination``), the platform keeps ``application_fee_amount``, and the
seller is the canonical customer linked to that account (``Customer.stripe_account_id``).

Called by the ``customer_projection`` handler (billing/handlers.py) for every event
about such a payment, in the same transaction, after the customer projection:

- checkout.session.completed / async_payment_succeeded / async_payment_failed (mode
  ``payment`` only), payment_intent.succeeded, charge.succeeded: the order and its paid;
- charge.refunded, refund.created / updated / failed, charge.refund.updated: what was
  refunded (charges carry ``amount_refunded``; since 2022-11-15 no ``refunds`` list
  unless expanded, so refund objects are counted one by one, by id);
- charge.dispute.created / updated / funds_withdrawn / funds_reinstated / closed.

Same rules as the customer projection (billing/status_map.py): an event does not write
the order's fields, it adds what its object says to the order's ``facts``, each fact
newest-wins by the event's place in Stripe's order (:func:`event_key`), and the fields
are derived from all the facts (:func:`derive`). The same events give the same order in
any order, a duplicate changes nothing, and an older event never undoes a newer one.

The state, from the facts: an open dispute -> ``disputed``; a lost one -> ``lost``;
refunded in full -> ``refunded``; in part -> ``partially_refunded``; a won dispute ->
``won``; paid -> ``paid``; a failed asynchronous payment -> ``failed``; else
``pending`` (a Checkout session completed, awaiting a bank debit). A refund or a
dispute implies the payment was made, whatever arrives first.

Whether a payment is an order is read from the object where it says so (a Checkout
session's ``mode``, Connect fields, older API versions' ``invoice``); since basil a
charge or payment intent no longer names its invoice, and it is asked of Stripe once per
event (its InvoicePayments, kept with the event; ``billing.events.invoice_id``) until an
order for that payment exists. Stripe being unreachable never fails the customer
projection this runs in: the event is passed over, and when a later event of the payment
creates the order, every stored event of that payment is folded in (facts do not depend
on the order they are applied in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q

from billing import shapes
from billing.adapters import stripe_client
from billing.models import Order, OrderState
from config.locks import advisory_xact_lock
from customers.models import Customer, MarketplaceRole

PAID_EVENTS = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "payment_intent.succeeded",
    "charge.succeeded",
)
FAILED_EVENTS = ("checkout.session.async_payment_failed",)
REFUND_EVENTS = (
    "charge.refunded",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.refund.updated",
)
DISPUTE_EVENTS = (
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
    "charge.dispute.closed",
)
# Within one second (Stripe's clock), the order in which a payment's life produces these.
SAME_SECOND_ORDER = (
    *PAID_EVENTS,
    *FAILED_EVENTS,
    "refund.created",
    "charge.refund.updated",
    "refund.updated",
    "refund.failed",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.updated",
    "charge.dispute.funds_reinstated",
    "charge.dispute.closed",
)
ORDER_EVENTS = frozenset(SAME_SECOND_ORDER)
_RANK = {event_type: rank for rank, event_type in enumerate(SAME_SECOND_ORDER)}

# Dispute statuses after which nothing more happens. ``warning_closed`` (an inquiry
# that never became a chargeback) and ``prevented`` leave the payment as it was.
DISPUTE_CLOSED = ("won", "lost", "warning_closed", "prevented")
# Refund statuses whose money has left (or is leaving) the platform.
REFUND_COUNTED = ("succeeded", "pending", "requires_action")

Key = list[Any]
Facts = dict[str, Any]
"""An order's facts (``Order.facts``), plain JSON::

    ids       {name: {v, k}}  payment_intent, charge, checkout_session, buyer, buyer_email,
                              seller_account, on_behalf_of, transfer, amount, currency,
                              application_fee_amount, livemode: newest non-empty each
    paid      {k}             the oldest event that showed the payment made
    failed    {k}             newest failed asynchronous payment
    charge_refunded {k, amount, refunded}   newest charge snapshot's refunded amount
    refunds   {refund id: {k, amount, status}}
    disputes  {dispute id: {k, status, amount}}
"""


def event_key(created: datetime | None, event_type: str, event_id: str) -> Key:
    """The event's place in Stripe's order: second, then ``SAME_SECOND_ORDER``, then id."""
    seconds = int(created.timestamp()) if created else 0
    return [seconds, _RANK.get(event_type, 0), event_id]


# --- what an object says ------------------------------------------------------------------


def _account(value: Any) -> str:
    """A connected account id (``acct_…``) from an expandable reference, else ""."""
    found = shapes.ref_id(value)
    return found if found.startswith("acct_") else ""


def _destination(obj: Mapping[str, Any]) -> str:
    transfer_data = obj.get("transfer_data") or {}
    found = _account(transfer_data.get("destination")) if transfer_data else ""
    return found or _account(obj.get("destination"))  # charges before 2019


def payment_refs(obj: Mapping[str, Any]) -> dict[str, str]:
    """The ids of the payment an object is about (payment intent, charge, Checkout
    session), "" where it names none."""
    kind = shapes.object_type(obj)
    own = str(obj.get("id") or "")
    if kind == "checkout.session":
        return {
            "payment_intent": shapes.ref_id(obj.get("payment_intent")),
            "charge": "",
            "checkout_session": own,
        }
    if kind == "payment_intent":
        return {
            "payment_intent": own,
            "charge": shapes.ref_id(obj.get("latest_charge")),
            "checkout_session": "",
        }
    if kind == "charge":
        return {
            "payment_intent": shapes.ref_id(obj.get("payment_intent")),
            "charge": own,
            "checkout_session": "",
        }
    # refunds and disputes
    return {
        "payment_intent": shapes.ref_id(obj.get("payment_intent")),
        "charge": shapes.ref_id(obj.get("charge")),
        "checkout_session": "",
    }


def _identity(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Identity and amounts an object states (None where it says nothing)."""
    kind = shapes.object_type(obj)
    values: dict[str, Any] = {**payment_refs(obj)}
    if kind in ("refund", "dispute"):
        values["livemode"] = obj.get("livemode")
        return values
    values.update(
        buyer=shapes.customer_id(obj),
        buyer_email=shapes.email_of(obj),
        currency=str(obj.get("currency") or ""),
        livemode=obj.get("livemode"),
    )
    if kind == "checkout.session":
        values["amount"] = obj.get("amount_total")
        return values
    values.update(
        amount=obj.get("amount"),
        application_fee_amount=obj.get("application_fee_amount"),
        seller_account=_destination(obj),
        on_behalf_of=_account(obj.get("on_behalf_of")),
    )
    if kind == "charge":
        values["transfer"] = shapes.ref_id(obj.get("transfer"))
    return values


def _newer(current: Mapping[str, Any] | None, key: Key) -> bool:
    return current is None or key > current["k"]


def _put(bucket: dict[str, Any], name: str, value: dict[str, Any], key: Key) -> bool:
    if not _newer(bucket.get(name), key):
        return False
    bucket[name] = {**value, "k": key}
    return True


def _identity_facts(facts: Facts, obj: Mapping[str, Any], key: Key) -> None:
    ids = facts.setdefault("ids", {})
    for name, value in _identity(obj).items():
        if value is None or value == "":
            continue
        _put(ids, name, {"v": value}, key)


def apply(facts: Facts, event_type: str, obj: Mapping[str, Any], key: Key) -> None:
    """Record what one event's object says in ``facts`` (in place)."""
    _identity_facts(facts, obj, key)
    kind = shapes.object_type(obj)
    paid = False
    if event_type in PAID_EVENTS:
        paid = obj.get("payment_status", "paid") in ("paid", "no_payment_required")
        if kind in ("payment_intent", "charge"):
            paid = obj.get("status") == "succeeded"
    elif event_type in FAILED_EVENTS:
        _put(facts, "failed", {}, key)
    elif kind == "charge":
        paid = obj.get("status") == "succeeded"  # a refunded charge was paid first
    elif kind in ("refund", "dispute"):
        paid = True  # only a payment made can be refunded or disputed
    if paid and (facts.get("paid") is None or key < facts["paid"]["k"]):
        facts["paid"] = {"k": key}
    if kind == "charge" and event_type in REFUND_EVENTS:
        _put(
            facts,
            "charge_refunded",
            {
                "amount": int(obj.get("amount_refunded") or 0),
                "refunded": bool(obj.get("refunded")),
            },
            key,
        )
        # Older API versions (and an expanded charge) list the refunds themselves.
        for refund in (obj.get("refunds") or {}).get("data") or []:
            _refund_fact(facts, refund, key)
    if kind == "refund":
        _refund_fact(facts, obj, key)
    if kind == "dispute" and obj.get("id"):
        _put(
            facts.setdefault("disputes", {}),
            str(obj["id"]),
            {"status": str(obj.get("status") or ""), "amount": int(obj.get("amount") or 0)},
            key,
        )


def _refund_fact(facts: Facts, refund: Mapping[str, Any], key: Key) -> None:
    if refund.get("id"):
        _put(
            facts.setdefault("refunds", {}),
            str(refund["id"]),
            {"amount": int(refund.get("amount") or 0), "status": str(refund.get("status") or "")},
            key,
        )


def merge(into: Facts, other: Facts) -> None:
    """Add ``other``'s facts to ``into`` (two orders found to be one payment)."""
    for name in ("ids", "refunds", "disputes"):
        bucket = into.setdefault(name, {})
        for item, value in (other.get(name) or {}).items():
            _put(bucket, item, {k: v for k, v in value.items() if k != "k"}, value["k"])
    for name in ("failed", "charge_refunded"):
        if other.get(name):
            _put(into, name, {k: v for k, v in other[name].items() if k != "k"}, other[name]["k"])
    if other.get("paid") and (into.get("paid") is None or other["paid"]["k"] < into["paid"]["k"]):
        into["paid"] = other["paid"]


def _at(key: Key | None) -> datetime | None:
    return shapes.timestamp(key[0]) if key and key[0] else None


def derive(facts: Facts) -> dict[str, Any]:
    """The order's fields from its facts (module docstring: the rules)."""
    ids = {name: value["v"] for name, value in (facts.get("ids") or {}).items()}
    amount = int(ids.get("amount") or 0)
    refunds = facts.get("refunds") or {}
    counted = sum(r["amount"] for r in refunds.values() if r["status"] in REFUND_COUNTED)
    charge = facts.get("charge_refunded") or {}
    refunded = max(int(charge.get("amount") or 0), counted)
    disputes = [d["status"] for d in (facts.get("disputes") or {}).values()]
    if any(status not in DISPUTE_CLOSED for status in disputes):
        state = OrderState.DISPUTED
    elif "lost" in disputes:
        state = OrderState.LOST
    elif charge.get("refunded") or (amount and refunded >= amount):
        state = OrderState.REFUNDED
    elif refunded:
        state = OrderState.PARTIALLY_REFUNDED
    elif "won" in disputes:
        state = OrderState.WON
    elif facts.get("paid"):
        state = OrderState.PAID
    elif facts.get("failed"):
        state = OrderState.FAILED
    else:
        state = OrderState.PENDING
    keys = [
        value["k"]
        for bucket in ("ids", "refunds", "disputes")
        for value in (facts.get(bucket) or {}).values()
    ]
    return {
        "state": state,
        "payment_intent_id": ids.get("payment_intent") or None,
        "charge_id": ids.get("charge") or None,
        "checkout_session_id": ids.get("checkout_session") or None,
        "buyer_stripe_customer_id": ids.get("buyer") or "",
        "buyer_email": ids.get("buyer_email") or "",
        "seller_account_id": ids.get("seller_account") or "",
        "on_behalf_of": ids.get("on_behalf_of") or "",
        "transfer_id": ids.get("transfer") or "",
        "amount": amount,
        "currency": str(ids.get("currency") or "").lower(),
        "application_fee_amount": int(ids.get("application_fee_amount") or 0),
        "amount_refunded": refunded,
        "livemode": bool(ids.get("livemode")),
        "paid_at": _at((facts.get("paid") or {}).get("k")),
        "last_event_created": _at(max(keys)) if keys else None,
    }


# --- the projection -----------------------------------------------------------------------


@dataclass
class OrderResult:
    order_id: int | None
    note: str
    changes: list[str] = field(default_factory=list)


def _match(refs: Mapping[str, str]) -> Q | None:
    """Orders that any of the payment's ids belongs to."""
    match = Q()
    for name, column in (
        ("payment_intent", "payment_intent_id"),
        ("charge", "charge_id"),
        ("checkout_session", "checkout_session_id"),
    ):
        if refs.get(name):
            match |= Q(**{column: refs[name]})
    return match or None


def _orders_for(refs: Mapping[str, str]) -> list[Order]:
    match = _match(refs)
    if match is None:
        return []
    return list(Order.objects.select_for_update().filter(match).order_by("pk"))


def _connect_fields(obj: Mapping[str, Any]) -> bool:
    """The object is a Connect payment (destination, on behalf of, application fee)."""
    return bool(
        _destination(obj) or _account(obj.get("on_behalf_of")) or obj.get("application_fee_amount")
    )


def _pays_an_invoice(
    *, event_id: str, event_type: str, created: datetime | None, obj: Mapping[str, Any]
) -> bool | None:
    """Whether the object's payment pays an invoice, asked of Stripe's InvoicePayments
    (basil shapes name no invoice), once per event; None when Stripe cannot be asked."""
    from billing import events

    probe = events.BillingEvent(
        event_id=event_id,
        type=event_type,
        created=created,
        livemode=bool(obj.get("livemode")),
        customer_id=None,
        stripe_customer_id="",
        object=obj,
    )
    try:
        return bool(events.invoice_id(probe))
    except events.LookupFailed:
        return None


@dataclass
class _Decision:
    is_order: bool | None  # None: cannot tell now (Stripe unreachable)
    why: str
    charge: Mapping[str, Any] | None = None  # the charge, when it had to be read


def _decide(
    *, event_id: str, event_type: str, created: datetime | None, obj: Mapping[str, Any]
) -> _Decision:
    """Is the object's payment (of which no order exists yet) a one-time payment?

    From the object where it says so: a Checkout session's ``mode``; Connect fields (a
    marketplace payment); an older shape's ``invoice``. A refund or dispute says none of
    this: its charge is read once (which also tells the seller). Else Stripe's
    InvoicePayments of the payment intent are asked. Never raises for Stripe being
    unreachable: the event is then left to the order's later events, which fold in every
    stored event of the payment when they create the order."""
    kind = shapes.object_type(obj)
    if kind == "checkout.session":
        return _Decision(
            obj.get("mode") == "payment", f"a Checkout session in mode {obj.get('mode')}"
        )
    charge = None
    subject = obj
    if kind in ("refund", "dispute") and payment_refs(obj)["charge"]:
        try:
            charge = stripe_client.retrieve("charge", payment_refs(obj)["charge"])
        except stripe_client.StripeUnavailable:
            return _Decision(None, "its charge could not be read from Stripe")
        subject = charge
    if _connect_fields(subject):
        return _Decision(True, "a Connect payment", charge)
    linked = shapes.linked_invoice_id(subject)
    if linked is not None:
        return _Decision(not linked, f"invoice {linked}" if linked else "no invoice", charge)
    if not payment_refs(subject)["payment_intent"]:
        return _Decision(True, "a charge without a payment intent", charge)
    pays = _pays_an_invoice(event_id=event_id, event_type=event_type, created=created, obj=subject)
    if pays is None:
        return _Decision(None, "Stripe could not say whether it pays an invoice", charge)
    return _Decision(not pays, "pays an invoice" if pays else "pays no invoice", charge)


def _stored_events(refs: Mapping[str, str]) -> list[Any]:
    """Every stored event about the payment (its objects, and refunds and disputes that
    name its charge or payment intent), for an order created after some were skipped."""
    from billing.models import StripeEvent

    ids = [r for r in refs.values() if r]
    match = Q(object_id__in=ids)
    for pointer in ("charge", "payment_intent"):
        match |= Q(**{f"payload__data__object__{pointer}__in": ids})
    return list(
        StripeEvent.objects.filter(match, type__in=ORDER_EVENTS)
        .exclude(stripe_id=None)
        .only("stripe_id", "type", "created", "payload", "resolved")[:500]
    )


def order_project(
    *, event_id: str, event_type: str, created: datetime | None, obj: Mapping[str, Any]
) -> OrderResult:
    """Apply one event to the order of its payment (created the first time). Returns the
    order and what changed (``order_state``, ``order_amount_refunded``, ``order_created``)."""
    if event_type not in ORDER_EVENTS:
        return OrderResult(None, "")
    refs = payment_refs(obj)
    if not any(refs.values()):
        return OrderResult(None, "names no payment: no order")
    with transaction.atomic(savepoint=False):
        # Serialise events of one payment: every id it names, in one order (no deadlock).
        for ref in sorted(r for r in refs.values() if r):
            advisory_xact_lock(f"order:{ref}")
        found = _orders_for(refs)
        decision = None
        if not found:
            decision = _decide(event_id=event_id, event_type=event_type, created=created, obj=obj)
            if not decision.is_order:
                return OrderResult(None, f"no order: {decision.why}")
        order = found[0] if found else Order(facts={})
        created_now = order.pk is None
        before = (None, 0) if created_now else (order.state, order.amount_refunded)
        facts = order.facts or {}
        for other in found[1:]:
            # Two orders were one payment (their first events named different ids).
            merge(facts, other.facts or {})
            other.delete()
        apply(facts, event_type, obj, event_key(created, event_type, event_id))
        if created_now:
            # Events of this payment processed before it was known to be an order (Stripe
            # could not be asked then) count too: the facts do not depend on the order.
            for row in _stored_events(refs):
                apply(
                    facts,
                    row.type,
                    row.data_object,
                    event_key(row.created, row.type, row.stripe_id),
                )
        if decision is not None and decision.charge is not None:
            # A refund or dispute before any event of the payment itself: the charge read
            # for the decision says who was paid (the seller) and how much. Kept as the
            # oldest fact, so every event of the payment overrides it.
            _identity_facts(facts, decision.charge, [0, -1, f"fetched:{refs['charge']}"])
        order.facts = facts
        for name, value in derive(facts).items():
            setattr(order, name, value)
        order.buyer = (
            Customer.objects.filter(stripe_customer_id=order.buyer_stripe_customer_id).first()
            if order.buyer_stripe_customer_id
            else None
        )
        order.seller = (
            Customer.objects.filter(stripe_account_id=order.seller_account_id).first()
            if order.seller_account_id
            else None
        )
        if order.buyer is not None and order.buyer.erased_at is not None:
            _forget_buyer_email(order)  # erased on request: a later event never writes it back
        order.save()
        if order.buyer is not None and order.seller_account_id:
            Customer.objects.filter(
                pk=order.buyer.pk, marketplace_role=MarketplaceRole.NONE
            ).update(marketplace_role=MarketplaceRole.BUYER)
    changes = []
    if created_now:
        changes.append("order_created")
    if before[0] != order.state:
        changes.append("order_state")
    if before[1] != order.amount_refunded:
        changes.append("order_amount_refunded")
    note = f"order #{order.pk}: {order.state}" + (
        f" (was {before[0]})" if before[0] and before[0] != order.state else ""
    )
    return OrderResult(order.pk, note, changes)


def _forget_buyer_email(order: Order) -> None:
    order.buyer_email = ""
    (order.facts.get("ids") or {}).pop("buyer_email", None)


def orders_erase_buyer(customer_id: Any) -> int:
    """Remove the buyer's email from their orders (an erasure on request); returns how
    many orders held it. Amounts, ids and states stay: they are the business's records."""
    erased = 0
    for order in Order.objects.select_for_update().filter(buyer_id=customer_id):
        if order.buyer_email or "buyer_email" in (order.facts.get("ids") or {}):
            _forget_buyer_email(order)
            order.save(update_fields=["buyer_email", "facts"])
            erased += 1
    return erased


def orders_link_seller(customer: Customer) -> int:
    """Point the orders paid to ``customer``'s connected account at it (an owner linked
    the account after its orders arrived). Returns how many changed."""
    if not customer.stripe_account_id:
        return Order.objects.filter(seller=customer).update(seller=None)
    Order.objects.filter(seller=customer).exclude(
        seller_account_id=customer.stripe_account_id
    ).update(seller=None)
    return (
        Order.objects.filter(seller_account_id=customer.stripe_account_id)
        .exclude(seller=customer)
        .update(seller=customer)
    )


def seller_linked(
    sender: Any, *, instance: Customer, created: bool, update_fields: Any = None, **kwargs: Any
) -> None:
    """``post_save`` of a customer: an owner linked (or unlinked) a connected account."""
    if update_fields is not None and "stripe_account_id" not in update_fields:
        return
    if created and not instance.stripe_account_id:
        return
    orders_link_seller(instance)


def order_for(obj: Mapping[str, Any]) -> Order | None:
    """The order an object's payment belongs to, if there is one (a read)."""
    match = _match(payment_refs(obj)) if obj else None
    return Order.objects.filter(match).order_by("pk").first() if match is not None else None


def refund_params(charge: Mapping[str, Any]) -> dict[str, Any]:
    """What a refund of ``charge`` (the Stripe charge object, as Stripe has it now) must
    also ask Stripe for: for a Connect destination charge, reverse the transfer to the
    seller (in proportion to the refund) and refund the platform's application fee
    (``reverse_transfer``, ``refund_application_fee``: Stripe's refund parameters for
    destination charges). Nothing for any other charge. Read from the charge itself, not
    from our orders, so it holds before the order's events were processed."""
    if not _destination(charge):
        return {}
    params: dict[str, Any] = {"reverse_transfer": True}
    if charge.get("application_fee_amount"):
        params["refund_application_fee"] = True
    return params
