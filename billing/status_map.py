"""The status map: what each Stripe event says, and the customer's billing state as a
function of everything Stripe said.

Stripe promises no order: the same events reach us, and are processed, in any order.
So nothing here depends on which event came first. The map has two halves:

1. ``RULES``: for each event type, the *fact* its object establishes: a subscription's
   snapshot, an invoice paid or failed, a payment's outcome, a dispute opened or closed,
   the customer deleted, the customer's profile. A fact is kept newest-wins, per
   subscription, per dispute, by the event's place in Stripe's order (:func:`event_key`:
   the ``created`` second, then ``SAME_SECOND_ORDER``, then the event id). Newest-wins
   with one total order is commutative: the same events applied in any order leave the
   same facts.
2. :func:`derive`: the customer's status, plan, period, and payment status from
   the facts. A pure function of the facts, so of the set of events, never of their order.

How the status is derived (README.md has this in words):

- the **current subscription** is the newest one that has not ended, else the newest of
  all (Stripe's ``created`` of the subscription): the end of an older subscription never
  cancels the current one;
- its status is Stripe's status of its newest snapshot, then its **invoices** move it on:
  the newest paid and the newest failed invoice of that subscription not older than the
  snapshot, in Stripe's order. Paid brings back a customer who was behind (none,
  past_due, unpaid, incomplete → active; never a canceled one: a final invoice can be
  paid after cancellation); failed makes a paying customer past due (active, trialing →
  past_due) and leaves a subscription whose first invoice failed incomplete;
- a **deleted customer** is canceled;
- **refunded**: nothing running (none or canceled) and the newest payment event is a
  full refund (``charge.refunded``), whichever of the refund and the cancellation came
  first; a later payment ends it;
- **disputed**: while any dispute of the customer is open (created and not closed); when
  the last one closes, won or lost, the customer is back to what the rest of the facts say;
- onboarding (provisioning in the product) is not billing's to say: a payment never
  means access was provisioned. The ``provisioning`` app subscribes to these events and
  moves ``onboarding_state`` only when the product confirms (provisioning/states.py).

Which other apps act on an event is not decided here: they subscribe to billing's
published events by type (billing/events.py), and each subscriber gets its own run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from billing import shapes
from customers.models import BillingStatus as S
from customers.models import PaymentStatus as P

# Billing's own handler runs (billing/handlers.py); subscribers' runs are named after them.
PROJECTION = "customer_projection"
MIRROR = "stripe_mirror"

# Stripe subscription.status -> internal status (identical names, listed for clarity).
SUBSCRIPTION_STATUS = {
    "trialing": S.TRIALING,
    "active": S.ACTIVE,
    "past_due": S.PAST_DUE,
    "unpaid": S.UNPAID,
    "canceled": S.CANCELED,
    "incomplete": S.INCOMPLETE,
    "incomplete_expired": S.INCOMPLETE_EXPIRED,
    "paused": S.PAUSED,
}

# A subscription in one of these has been provisioned at least once.
_PROVISIONED = {"active", "trialing", "past_due", "unpaid", "paused"}

# Stripe's ``created`` has one-second resolution. Within one second, the order in which a
# subscription's life produces these events (a payment fails before the subscription
# goes past due; a dispute closes after it opened; deletion comes last): two events of
# the same second are ordered by it, so no same-second pair is left to chance.
SAME_SECOND_ORDER = (
    "customer.created",
    "customer.subscription.created",
    "invoice.payment_action_required",
    "payment_intent.payment_failed",
    "invoice.payment_failed",
    "payment_intent.succeeded",
    "invoice_payment.paid",
    "invoice.payment_succeeded",
    "invoice.paid",
    "checkout.session.completed",
    "customer.subscription.updated",
    "customer.subscription.trial_will_end",
    "customer.updated",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
    "customer.subscription.deleted",
    "customer.deleted",
)
_RANK = {event_type: rank for rank, event_type in enumerate(SAME_SECOND_ORDER)}
# Reconcile's snapshots are Stripe's state at the time of the run: after any event of
# that second.
RECONCILE_RANK = len(SAME_SECOND_ORDER)

Key = list[Any]  # [created (unix seconds), same-second rank, event id]: compared as a list
Facts = dict[str, Any]
"""The facts of one customer (``billing.CustomerFacts.facts``), plain JSON::

    subscriptions  {sub id: {k, status, created, plan_id, plan_name, period_end,
                             cancel_at_period_end, latest_invoice}}  newest snapshot each
    invoices       {sub id: {"paid"|"failed": {k, id, paid, first}}}  per subscription, its
                   newest paid invoice and its newest failed one
    latest_invoice {k, id}                          the newest invoice any event named
    payment        {k, status, source}              newest payment outcome (source: type)
    disputes       {dispute id: {k, open}}          newest state of each dispute
    deleted        {k}                              the Stripe customer was deleted
    profile        {k, email, name}                 newest customer object
    provisioned    true once a live subscription or a payment was seen (never unset)

``k`` is the :func:`event_key` of the event that established the fact.
"""


def event_key(created: datetime | None, event_type: str, event_id: str) -> Key:
    """The event's place in Stripe's order: second, then type (``SAME_SECOND_ORDER``),
    then id (two different events of one type in one second: see the projection)."""
    seconds = int(created.timestamp()) if created else 0
    rank = RECONCILE_RANK if event_id.startswith("reconcile:") else _RANK.get(event_type, 0)
    return [seconds, rank, event_id]


def _newer(current: Mapping[str, Any] | None, key: Key) -> bool:
    return current is None or key > current["k"]


# --- facts each event establishes -----------------------------------------------------


@dataclass
class Applied:
    """What applying one event did to the facts, for the handler run's note."""

    notes: list[str] = field(default_factory=list)
    # A subscription whose snapshot conflicts with another event of the same second and
    # type: the projection re-reads it from Stripe.
    ambiguous: str = ""


Context = Mapping[str, Any]
FactFn = Callable[[Facts, Mapping[str, Any], Key, Context, Applied], None]


def _put(bucket: dict[str, Any], name: str, value: dict[str, Any], key: Key) -> bool:
    if not _newer(bucket.get(name), key):
        return False
    bucket[name] = {**value, "k": key}
    return True


def subscription_fact(
    facts: Facts, sub: Mapping[str, Any], key: Key, *, deleted: bool = False
) -> tuple[bool, str]:
    """Keep ``sub`` as its subscription's newest snapshot. Returns (applied, conflict):
    ``conflict`` names the subscription when another event of the same second and type
    said something else about it."""
    summary = shapes.subscription_summary(sub)
    if deleted:
        summary["status"] = "canceled"
    subs = facts.setdefault("subscriptions", {})
    if summary["id"] and subs.get("", {}).get("k", [0, 0, ""])[2] == BEFORE_FACTS:
        # A status kept from before facts, of no known subscription: a real one decides.
        del subs[""]
    current = subs.get(summary["id"])
    if summary["status"] in _PROVISIONED:
        facts["provisioned"] = True
    if current is not None and current["k"][:2] == key[:2] and current["k"][2] != key[2]:
        mine = {k: v for k, v in current.items() if k != "k"}
        if mine != summary:
            return False, summary["id"]
    applied = _put(subs, summary["id"], summary, key)
    if applied and summary["latest_invoice"]:
        _put(facts, "latest_invoice", {"id": summary["latest_invoice"]}, key)
    return applied, ""


def _subscription(
    facts: Facts, obj: Mapping[str, Any], key: Key, ctx: Context, out: Applied
) -> None:
    applied, conflict = subscription_fact(facts, obj, key, deleted=ctx.get("deleted", False))
    if conflict:
        out.ambiguous = conflict
        out.notes.append(f"subscription {conflict}: another event of the same second differs")
    elif not applied:
        out.notes.append(f"subscription {obj.get('id')}: older than the applied snapshot; skipped")


def _subscription_deleted(
    facts: Facts, obj: Mapping[str, Any], key: Key, ctx: Context, out: Applied
) -> None:
    _subscription(facts, obj, key, {**ctx, "deleted": True}, out)


def _invoice_outcome(
    facts: Facts, invoice: Mapping[str, Any], key: Key, paid: bool, out: Applied
) -> None:
    invoice_id = str(invoice.get("id") or "")
    if invoice_id:
        _put(facts, "latest_invoice", {"id": invoice_id}, key)
    sub_id = shapes.invoice_subscription_id(invoice)
    if not sub_id:
        return  # a one-off invoice says nothing about the subscription
    if paid:
        facts["provisioned"] = True
    value = {"id": invoice_id, "paid": paid, "first": shapes.invoice_is_first(invoice)}
    outcomes = facts.setdefault("invoices", {}).setdefault(sub_id, {})
    if not _put(outcomes, "paid" if paid else "failed", value, key):
        outcome = "payment" if paid else "failure"
        out.notes.append(f"invoice {invoice_id}: older than the applied {outcome}; skipped")


def _invoice_paid(
    facts: Facts, obj: Mapping[str, Any], key: Key, ctx: Context, out: Applied
) -> None:
    _invoice_outcome(facts, obj, key, True, out)


def _invoice_failed(
    facts: Facts, obj: Mapping[str, Any], key: Key, ctx: Context, out: Applied
) -> None:
    _invoice_outcome(facts, obj, key, False, out)


def _invoice_payment_paid(
    facts: Facts, obj: Mapping[str, Any], key: Key, ctx: Context, out: Applied
) -> None:
    # An InvoicePayment names its invoice only; the projection gives the invoice (an
    # earlier event's snapshot, or Stripe's) in the context.
    invoice = ctx.get("invoice") or {"id": shapes.invoice_payment_invoice_id(obj)}
    if shapes.invoice_payment_pays_in_full(obj):
        _invoice_outcome(facts, invoice, key, True, out)
    else:
        out.notes.append("invoice payment: part of the invoice only; the invoice stays open")


def _customer_deleted(
    facts: Facts, obj: Mapping[str, Any], key: Key, ctx: Context, out: Applied
) -> None:
    _put(facts, "deleted", {}, key)


def _dispute(open_: bool) -> FactFn:
    def fact(facts: Facts, obj: Mapping[str, Any], key: Key, ctx: Context, out: Applied) -> None:
        disputes = facts.setdefault("disputes", {})
        if not _put(disputes, str(obj.get("id") or ""), {"open": open_}, key):
            out.notes.append(f"dispute {obj.get('id')}: older than its applied state; skipped")
        if not open_ and "*" in disputes:
            # A dispute recorded before facts were kept (id unknown) ends with any close.
            disputes["*"] = {**disputes["*"], "open": False}

    return fact


def _profile(facts: Facts, obj: Mapping[str, Any], key: Key, ctx: Context, out: Applied) -> None:
    value = {"email": str(obj.get("email") or ""), "name": str(obj.get("name") or "")}
    if not _put(facts, "profile", value, key):
        out.notes.append("profile: older than the applied customer object; skipped")


def _refund_payment(obj: Mapping[str, Any]) -> str:
    return P.REFUNDED if obj.get("refunded") else P.PARTIALLY_REFUNDED


def _dispute_closed_payment(obj: Mapping[str, Any]) -> str:
    # Lost: the money went back to the cardholder. Won, or an inquiry closed without a
    # chargeback: the payment stands.
    return P.REFUNDED if obj.get("status") == "lost" else P.SUCCEEDED


def _invoice_payment_payment(obj: Mapping[str, Any]) -> str | None:
    return P.SUCCEEDED if obj.get("status") == "paid" else None


@dataclass(frozen=True)
class Rule:
    # The facts the event's object establishes (see ``Facts``).
    facts: tuple[FactFn, ...] = ()
    # The customer's last payment status it gives, or None.
    payment: Callable[[Mapping[str, Any]], str | None] | str | None = None
    notes: str = ""
    mirror: bool = True
    # The projection needs the invoice this object pays (InvoicePayment objects).
    needs_invoice: bool = False

    def payment_status(self, obj: Mapping[str, Any]) -> str | None:
        if callable(self.payment):
            return self.payment(obj)
        return self.payment


RULES: dict[str, Rule] = {
    "checkout.session.completed": Rule(
        payment=lambda o: P.SUCCEEDED if o.get("payment_status") == "paid" else None,
        mirror=False,
        notes="links the customer; subscription events carry the status",
    ),
    "customer.created": Rule(facts=(_profile,)),
    "customer.updated": Rule(facts=(_profile,)),
    "customer.deleted": Rule(facts=(_customer_deleted,), mirror=False),
    "customer.subscription.created": Rule(facts=(_subscription,)),
    "customer.subscription.updated": Rule(facts=(_subscription,)),
    "customer.subscription.deleted": Rule(facts=(_subscription_deleted,)),
    "customer.subscription.trial_will_end": Rule(),
    "invoice.paid": Rule(facts=(_invoice_paid,), payment=P.SUCCEEDED),
    "invoice.payment_failed": Rule(facts=(_invoice_failed,), payment=P.FAILED),
    "invoice.payment_action_required": Rule(payment=P.ACTION_REQUIRED),
    "invoice_payment.paid": Rule(
        facts=(_invoice_payment_paid,),
        payment=_invoice_payment_payment,
        mirror=False,
        needs_invoice=True,
        notes="basil and later: a payment of an invoice (InvoicePayment)",
    ),
    "payment_intent.succeeded": Rule(payment=P.SUCCEEDED),
    "payment_intent.payment_failed": Rule(payment=P.FAILED),
    "charge.refunded": Rule(payment=_refund_payment),
    "charge.dispute.created": Rule(facts=(_dispute(True),), payment=P.DISPUTED, mirror=False),
    "charge.dispute.closed": Rule(
        facts=(_dispute(False),), payment=_dispute_closed_payment, mirror=False
    ),
}

# Events about one-time payments (marketplace orders): the order projection
# (billing/orders.py) decides the order's state; for the customer they only link the
# buyer. Not mirrored: dj-stripe gains nothing the order does not hold.
for _type in (
    "charge.succeeded",
    "refund.created",
    "refund.updated",
    "refund.failed",
    "charge.refund.updated",
    "charge.dispute.updated",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
):
    RULES[_type] = Rule(mirror=False, notes="an order's payment, refund or dispute")
RULES["checkout.session.async_payment_succeeded"] = Rule(
    payment=P.SUCCEEDED, mirror=False, notes="a delayed payment method (bank debit) paid"
)
RULES["checkout.session.async_payment_failed"] = Rule(
    payment=P.FAILED, mirror=False, notes="a delayed payment method (bank debit) failed"
)
# A connected account's payout failed (the envelope's ``account`` names the seller; it
# arrives on a Connect endpoint): nothing for the customer, a ticket for support.
RULES["payout.failed"] = Rule(mirror=False, notes="a seller's payout: support's seller queue")

# invoice.payment_succeeded is what older API versions (and localstripe) send for a paid
# invoice; it means the same as invoice.paid.
RULES["invoice.payment_succeeded"] = RULES["invoice.paid"]


def rule_for(event_type: str) -> Rule | None:
    """The rule of an event type; a thin ``v1.*`` event follows its snapshot type."""
    return RULES.get(shapes.snapshot_type(event_type))


def handlers_for(event_type: str) -> tuple[str, ...]:
    """The handler runs an event fans out into: the projection, the mirror, then every
    subscriber of the type. Types not in the map fan out into nothing."""
    from django.conf import settings

    from billing.events import subscriptions_for

    rule = rule_for(event_type)
    if rule is None:
        return ()
    event_type = shapes.snapshot_type(event_type)
    mirror = (MIRROR,) if rule.mirror and settings.STRIPE_MIRROR_ENABLED else ()
    return (PROJECTION, *mirror, *(sub.name for sub in subscriptions_for(event_type)))


def apply(
    facts: Facts,
    event_type: str,
    obj: Mapping[str, Any],
    key: Key,
    ctx: Context | None = None,
) -> Applied:
    """Record what one event's object says in ``facts`` (in place). ``ctx``: what the
    object itself no longer carries (``invoice`` for an InvoicePayment)."""
    out = Applied()
    rule = rule_for(event_type)
    if rule is None:
        return out
    for fact in rule.facts:
        fact(facts, obj, key, ctx or {}, out)
    payment = rule.payment_status(obj)
    if payment is not None:
        if payment == P.SUCCEEDED:
            facts["provisioned"] = True
        value = {"status": payment, "source": shapes.snapshot_type(event_type)}
        if not _put(facts, "payment", value, key):
            out.notes.append("payment: older than the applied payment; skipped")
    return out


def replace_subscription(facts: Facts, sub: Mapping[str, Any], key: Key) -> None:
    """Keep ``sub`` (Stripe's answer now, re-read after a same-second conflict) as its
    subscription's snapshot, at the newer of ``key`` and the one it replaces."""
    summary = shapes.subscription_summary(sub)
    subs = facts.setdefault("subscriptions", {})
    current = subs.get(summary["id"])
    subs[summary["id"]] = {**summary, "k": max(key, current["k"]) if current else key}
    if summary["status"] in _PROVISIONED:
        facts["provisioned"] = True


# --- the customer's state from the facts ----------------------------------------------


def current_subscription(facts: Facts) -> tuple[str, dict[str, Any] | None]:
    """(id, newest snapshot) of the subscription that decides the customer's state: the
    newest (by Stripe's ``created``) that has not ended, else the newest of all."""
    subs: dict[str, Any] = facts.get("subscriptions") or {}
    if not subs:
        return "", None
    live = {i: s for i, s in subs.items() if s["status"] not in shapes.ENDED_SUBSCRIPTION_STATUSES}
    pool = live or subs
    sub_id = max(pool, key=lambda i: (pool[i].get("created") or 0, pool[i]["k"]))
    return sub_id, pool[sub_id]


def _after_invoice(status: str, invoice: Mapping[str, Any]) -> str:
    if invoice["paid"]:
        # A paid invoice brings back a customer who was behind; it does not resurrect a
        # canceled subscription (a final invoice can be paid after cancellation).
        return S.ACTIVE if status in (S.NONE, S.PAST_DUE, S.UNPAID, S.INCOMPLETE) else status
    # The first invoice of a subscription failing leaves it incomplete; a renewal
    # failing makes a paying customer past due.
    if invoice["first"] and status in (S.NONE, S.INCOMPLETE):
        return S.INCOMPLETE
    if status in (S.ACTIVE, S.TRIALING):
        return S.PAST_DUE
    return status


def _at(key: Key | None) -> datetime | None:
    return shapes.timestamp(key[0]) if key and key[0] else None


def derive(facts: Facts) -> dict[str, Any]:
    """The customer's billing fields from the facts (module docstring: the rules).

    Fields no fact speaks about are left out (the customer keeps them)."""
    values: dict[str, Any] = {}
    sub_id, sub = current_subscription(facts)
    status = S.NONE
    if sub is not None:
        status = SUBSCRIPTION_STATUS.get(sub["status"], S.NONE)
        values.update(
            subscription_id=sub_id,
            plan_id=sub["plan_id"],
            plan_name=sub["plan_name"],
            current_period_end=shapes.timestamp(sub["period_end"]),
            cancel_at_period_end=sub["cancel_at_period_end"],
            subscription_event_created=_at(sub["k"]),
        )
    invoices: dict[str, Any] = facts.get("invoices") or {}
    if sub is None and invoices:
        # No snapshot of any subscription yet: the subscription of the newest invoice.
        sub_id = max(invoices, key=lambda i: max(o["k"] for o in invoices[i].values()))
    # The newest payment and the newest failure of the subscription's invoices, when not
    # older than its snapshot, move its status on, in Stripe's order.
    outcomes = sorted(
        (o for o in (invoices.get(sub_id) or {}).values() if sub is None or o["k"] >= sub["k"]),
        key=lambda o: o["k"],
    )
    for outcome in outcomes:
        status = _after_invoice(status, outcome)
    if facts.get("deleted"):
        status = S.CANCELED
    payment = facts.get("payment")
    if (
        status in (S.NONE, S.CANCELED)
        and payment
        and payment["status"] == P.REFUNDED
        and payment["source"] == "charge.refunded"
    ):
        status_with_overlays = S.REFUNDED
    else:
        status_with_overlays = status
    if any(d["open"] for d in (facts.get("disputes") or {}).values()):
        status_with_overlays = S.DISPUTED
    if any(
        facts.get(name) for name in ("subscriptions", "invoices", "deleted", "payment", "disputes")
    ):
        values["status"] = status_with_overlays
    if facts.get("latest_invoice"):
        values["latest_invoice_id"] = facts["latest_invoice"]["id"]
    if payment:
        values.update(
            last_payment_status=payment["status"],
            last_payment_at=_at(payment["k"]),
            payment_event_created=_at(payment["k"]),
        )
    profile = facts.get("profile")
    if profile:
        values["profile_event_created"] = _at(profile["k"])
        values.update({name: profile[name] for name in ("email", "name") if profile[name]})
    newest = max(
        (
            fact["k"]
            for fact in [
                *(facts.get("subscriptions") or {}).values(),
                *(o for per_sub in invoices.values() for o in per_sub.values()),
                *(facts.get("disputes") or {}).values(),
                *(v for v in (payment, facts.get("deleted")) if v),
            ]
        ),
        default=None,
    )
    if newest is not None:
        values.update(last_event_created=_at(newest), last_event_id=newest[2])
    return values


BEFORE_FACTS = "before-facts"


def facts_from_customer(customer: Any) -> Facts:
    """Facts for a customer projected before facts were recorded: what its billing fields
    say, at the times they were applied (older than any event that comes later), so the
    first event after the upgrade does not forget the rest."""

    def key(at: datetime | None) -> Key:
        return [int(at.timestamp()) if at else 0, -1, BEFORE_FACTS]

    facts: Facts = {}
    status = customer.status
    if customer.subscription_id or status in SUBSCRIPTION_STATUS.values():
        facts["subscriptions"] = {
            customer.subscription_id or "": {
                "k": key(customer.subscription_event_created or customer.last_event_created),
                # Unknown under a refund or dispute: re-read from Stripe when needed.
                "status": status if status in SUBSCRIPTION_STATUS.values() else "",
                "created": 0,
                "plan_id": customer.plan_id,
                "plan_name": customer.plan_name,
                "period_end": int(customer.current_period_end.timestamp())
                if customer.current_period_end
                else None,
                "cancel_at_period_end": customer.cancel_at_period_end,
                "latest_invoice": customer.latest_invoice_id,
            }
        }
    if customer.latest_invoice_id:
        facts["latest_invoice"] = {
            "id": customer.latest_invoice_id,
            "k": key(customer.last_event_created),
        }
    if customer.last_payment_status != P.NONE:
        facts["payment"] = {
            "status": customer.last_payment_status,
            "source": "charge.refunded" if status == S.REFUNDED else "",
            "k": key(customer.payment_event_created or customer.last_payment_at),
        }
    if status == S.DISPUTED:
        facts["disputes"] = {"*": {"open": True, "k": key(customer.last_event_created)}}
    if customer.profile_event_created:
        facts["profile"] = {
            "email": customer.email,
            "name": customer.name,
            "k": key(customer.profile_event_created),
        }
    if customer.onboarding_state == "active" or status in _PROVISIONED:
        facts["provisioned"] = True
    return facts
