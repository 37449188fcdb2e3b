"""Project one Stripe event onto the canonical customer, whatever order events arrive in.

Called by the ``customer_projection`` handler and by ``reconcile --repair``; the events
drain applies a batch's events of known customers at once (:func:`project_known`, the
same rules). Events for one Stripe customer are serialised by a PostgreSQL advisory lock
on the customer id, and the customer row is locked while it is read and written, so two
workers never interleave their reads and writes of one customer.

An event does not write the customer's fields directly: it adds what its object says to
the customer's facts (``billing.CustomerFacts``, each fact newest-wins by the event's
place in Stripe's order), and the fields are derived from all the facts
(``status_map.derive``). The same events therefore give the same customer in any order,
and an event older than what is known changes nothing. Two events of the same type and
second that say different things about one subscription cannot be ordered; the
projection then re-reads that subscription from Stripe and keeps what Stripe says now.
Those, and an object that no longer names what is needed (an InvoicePayment's invoice, a
dispute's customer), are the only Stripe calls it makes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from billing import shapes, status_map
from billing.adapters import stripe_client
from billing.models import CustomerFacts
from config.locks import advisory_xact_lock
from customers.models import Customer, MatchState

logger = logging.getLogger(__name__)


# The readers moved to billing/shapes.py; these names stay for their callers.
ts = shapes.timestamp
stripe_customer_id_of = shapes.customer_id
resolve_stripe_customer_id = shapes.resolve_customer_id


def subscription_fields(sub: dict[str, Any]) -> dict[str, Any]:
    """Customer fields a subscription object determines (any API version)."""
    summary = shapes.subscription_summary(sub)
    fields = {
        "subscription_id": summary["id"],
        "plan_id": summary["plan_id"],
        "plan_name": summary["plan_name"],
        "current_period_end": ts(summary["period_end"]),
        "cancel_at_period_end": summary["cancel_at_period_end"],
    }
    if summary["latest_invoice"]:
        fields["latest_invoice_id"] = summary["latest_invoice"]
    return fields


@dataclass
class Result:
    customer_id: Any
    stripe_customer_id: str
    note: str
    changed: list[str]
    api_calls: int = 0


def _find_or_link(stripe_customer_id: str, obj: dict[str, Any]) -> tuple[Customer, list[str]]:
    """The canonical customer for a Stripe customer, created or linked the first time."""
    customer = (
        Customer.objects.select_for_update().filter(stripe_customer_id=stripe_customer_id).first()
    )
    if customer is not None:
        return customer, []
    email = shapes.email_of(obj)
    candidates = (
        list(
            Customer.objects.select_for_update().filter(
                email__iexact=email, stripe_customer_id__isnull=True
            )[:2]
        )
        if email
        else []
    )
    if len(candidates) == 1:
        customer = candidates[0]
        customer.stripe_customer_id = stripe_customer_id
        customer.match_state = MatchState.MATCHED_BY_EMAIL
        customer.review_reason = (
            f"Linked to Stripe customer {stripe_customer_id} by email only; confirm it is "
            "the same person."
        )
        return customer, ["stripe_customer_id", "match_state", "review_reason"]
    customer = Customer(
        stripe_customer_id=stripe_customer_id,
        email=email,
        name=(obj.get("name") or "") if obj.get("object") == "customer" else "",
        match_state=MatchState.LINKED_BY_STRIPE_ID,
    )
    if len(candidates) > 1:
        customer.match_state = MatchState.CONFLICT
        customer.review_reason = (
            f"Several customers without a Stripe link have the email {email}; none was "
            "linked automatically."
        )
    customer.save(force_insert=True)
    return customer, ["created"]


def _assign(customer: Customer, values: dict[str, Any]) -> list[str]:
    """Set the fields that differ; returns their names."""
    changed = [key for key, value in values.items() if getattr(customer, key) != value]
    for key in changed:
        setattr(customer, key, values[key])
    return changed


def project(
    *,
    event_id: str,
    event_type: str,
    created: datetime | None,
    obj: dict[str, Any],
    refetch: bool = True,
    authoritative: bool = False,
) -> Result:
    """Apply one event's object snapshot to its customer. Returns what changed and why.

    ``refetch=False`` (reconcile, which already holds fresh objects) never calls Stripe
    for a same-second conflict. ``authoritative`` (reconcile): ``obj`` is Stripe's whole
    truth about the customer's subscriptions now; the snapshots of any others are dropped.
    """
    rule = status_map.rule_for(event_type)
    if rule is None:
        return Result(None, "", f"{event_type}: not in the status map; stored only", [])
    calls_before = stripe_client.api_calls.total
    stripe_customer_id = shapes.resolve_customer_id(obj)
    if not stripe_customer_id:
        return Result(None, "", "the event names no Stripe customer: nothing to project", [])
    context: dict[str, Any] = {}
    if rule.needs_invoice and shapes.invoice_payment_invoice_id(obj):
        context["invoice"] = shapes.invoice_object(shapes.invoice_payment_invoice_id(obj))
    key = status_map.event_key(created, event_type, event_id)

    # No savepoint: callers (the handler run, reconcile) already hold a transaction, and
    # any error here fails the whole of it.
    with transaction.atomic(savepoint=False):
        advisory_xact_lock(stripe_customer_id)
        customer, changed = _find_or_link(stripe_customer_id, obj)
        row = CustomerFacts.objects.select_for_update().filter(customer=customer).first()
        if row is None:
            fresh_customer = "created" in changed
            row = CustomerFacts(
                customer=customer,
                facts={} if fresh_customer else status_map.facts_from_customer(customer),
            )
        facts = row.facts
        if authoritative and shapes.object_type(obj) == "subscription":
            facts["subscriptions"] = {}
        applied = status_map.apply(facts, event_type, obj, key, context)
        notes = list(applied.notes)
        if applied.ambiguous and refetch:
            # Stripe's clock has one-second resolution: two different states of one
            # subscription from the same second cannot be ordered, so ask Stripe.
            fresh = stripe_client.retrieve("subscription", applied.ambiguous)
            status_map.replace_subscription(facts, fresh, key)
            notes.append(f"re-read subscription {applied.ambiguous} from Stripe")
        stale_id = _stale_current(facts)
        if refetch and stale_id:
            # Kept from before facts were recorded, under a dispute or a refund: what the
            # subscription's status is now, Stripe says.
            fresh = stripe_client.retrieve("subscription", stale_id)
            status_map.replace_subscription(facts, fresh, key)
            notes.append(f"re-read subscription {stale_id} from Stripe")
        row.facts = facts
        row.save()
        changed += derive_onto(customer, facts)
        if "created" in changed:
            customer.save()
        else:
            customer.save(
                update_fields=sorted(set(changed) | {"billing_confirmed_at", "updated_at"})
            )
    return Result(
        customer.pk,
        stripe_customer_id,
        outcome_note(notes, changed),
        sorted(set(changed)),
        stripe_client.api_calls.total - calls_before,
    )


def _stale_current(facts: dict[str, Any]) -> str:
    """The current subscription's id when its snapshot has no status (kept from before
    facts were recorded): the projection re-reads it from Stripe. Empty otherwise."""
    current_id, current = status_map.current_subscription(facts)
    return current_id if current is not None and current_id and not current["status"] else ""


def derive_onto(customer: Customer, facts: dict[str, Any]) -> list[str]:
    """Set the customer's fields from its facts (``status_map.derive``) and mark it
    confirmed by billing now; returns the fields that changed. Not saved."""
    derived = status_map.derive(facts)
    if customer.erased_at is not None:
        # Erased on request: a later customer object never writes the person back.
        derived = {k: v for k, v in derived.items() if k not in ("email", "name")}
    changed = _assign(customer, derived)
    customer.billing_confirmed_at = timezone.now()
    return changed


def outcome_note(notes: list[str], changed: list[str]) -> str:
    """The projection run's note: what applying the event said, else what changed."""
    return "; ".join(notes) or (
        "applied: " + ", ".join(sorted(set(changed))) if changed else "no change"
    )


@dataclass(frozen=True)
class Snapshot:
    """One event as the projection reads it."""

    event_id: str
    event_type: str
    created: datetime | None
    obj: dict[str, Any]


def project_known(groups: dict[str, list[Snapshot]]) -> dict[str, list[Result]]:
    """:func:`project` for many events of customers we already know, a few queries in
    all: the events drain's common case under a burst. Call inside a transaction.

    ``groups`` maps a Stripe customer id to its events, in Stripe's order. Each group is
    applied as :func:`project` would apply its events one after another (same facts, same
    fields, same notes), with its customer and facts read and written once. A group is
    left out, untouched, when it needs more than its snapshots: a customer not linked yet
    (creation and linking by email stay in :func:`project`), an object that does not name
    the customer, an invoice payment, a same-second conflict or a subscription without a
    status (both re-read from Stripe). The caller projects those one by one. Returns the
    results of the groups applied, one per event, in the order given.
    """
    keys = sorted(groups)
    # The customers' rows are the lock (in one order, so two batches never wait on each
    # other in a cycle). The advisory lock of :func:`project` is not needed for a customer
    # that exists: it serialises creating and linking one, and :func:`project` then takes
    # the customer's row lock too, so it waits for this transaction.
    customers = {
        c.stripe_customer_id: c
        for c in Customer.objects.select_for_update()
        .filter(stripe_customer_id__in=keys)
        .order_by("stripe_customer_id")
    }
    rows = {
        row.customer_id: row
        for row in CustomerFacts.objects.select_for_update().filter(
            customer__in=[c.pk for c in customers.values()]
        )
    }
    done: dict[str, list[Result]] = {}
    applied: list[tuple[Customer, CustomerFacts]] = []
    for key in keys:
        customer = customers.get(key)
        if customer is None:
            continue
        row = rows.get(customer.pk) or CustomerFacts(
            customer=customer, facts=status_map.facts_from_customer(customer)
        )
        results = _apply_snapshots(customer, row.facts, key, groups[key])
        if results is None:
            continue  # nothing is saved: the objects read here are dropped
        done[key] = results
        applied.append((customer, row))
    if applied:
        # Two statements for all of them (save() would be two per customer). bulk_update
        # sends no post_save: the projection never changes what receivers watch (a
        # customer's connected account, billing/orders.py seller_linked).
        now = timezone.now()
        CustomerFacts.objects.bulk_create(
            [row for _, row in applied],
            update_conflicts=True,
            unique_fields=["customer"],
            update_fields=["facts", "updated_at"],
        )
        changed = {
            name for results in done.values() for result in results for name in result.changed
        }
        for customer, _ in applied:
            customer.updated_at = now
        Customer.objects.bulk_update(
            [customer for customer, _ in applied],
            sorted(changed | {"billing_confirmed_at", "updated_at"}),
        )
    return done


def _apply_snapshots(
    customer: Customer, facts: dict[str, Any], stripe_customer_id: str, snapshots: list[Snapshot]
) -> list[Result] | None:
    """Apply snapshots to a customer's facts and fields in memory, as :func:`project`
    does one by one; None as soon as one needs more than its snapshot (see
    :func:`project_known`)."""
    results = []
    for snap in snapshots:
        rule = status_map.rule_for(snap.event_type)
        if rule is None or rule.needs_invoice:
            return None
        if shapes.customer_id(snap.obj) != stripe_customer_id:
            return None
        key = status_map.event_key(snap.created, snap.event_type, snap.event_id)
        applied = status_map.apply(facts, snap.event_type, snap.obj, key, {})
        if applied.ambiguous or _stale_current(facts):
            return None
        changed = derive_onto(customer, facts)
        results.append(
            Result(
                customer.pk,
                stripe_customer_id,
                outcome_note(list(applied.notes), changed),
                sorted(set(changed)),
            )
        )
    return results
