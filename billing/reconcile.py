"""Reconcile: compare Stripe's customers and subscriptions with the canonical records.

Drift categories: ``missing_locally`` (a Stripe customer with no canonical record),
``unknown_locally`` (a canonical record whose Stripe customer does not exist),
``status_mismatch``, ``plan_mismatch``, ``period_end_mismatch``. With ``repair`` each
item is fixed through the same projection code webhooks use (with Stripe's current
object and the time of the reconcile, so older events arriving later cannot undo it),
and audited as a system action. Every run is stored with its drift counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.utils import timezone

from audit import codes
from audit.services import audit_record
from billing import shapes, status_map
from billing.adapters import stripe_client
from billing.models import CustomerFacts, ReconcileRun
from billing.projection import project, subscription_fields
from customers.models import BillingStatus, Customer, MatchState

CATEGORIES = (
    "missing_locally",
    "unknown_locally",
    "status_mismatch",
    "plan_mismatch",
    "period_end_mismatch",
)
# Local states that overlay the subscription's (a dispute, a review) are not drift. A
# dispute overlays only while one is open (billing/status_map.py): a customer left
# ``disputed`` with every dispute closed is drift, repaired from the subscription.
OVERLAY_STATUSES = {BillingStatus.DISPUTED, BillingStatus.NEEDS_REVIEW, BillingStatus.REFUNDED}


def _overlaid(customer: Customer) -> bool:
    if customer.status not in OVERLAY_STATUSES:
        return False
    if customer.status != BillingStatus.DISPUTED:
        return True
    facts = CustomerFacts.objects.filter(customer=customer).values_list("facts", flat=True).first()
    disputes = (facts or {}).get("disputes")
    # No facts yet (projected before they were kept): the dispute is taken as open.
    return disputes is None or any(d.get("open") for d in disputes.values())


_NO_SUBSCRIPTION_OK = {BillingStatus.NONE, BillingStatus.CANCELED, BillingStatus.REFUNDED}

Progress = Callable[[str, int | None], None]


def _current_subscription(subs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The subscription that decides a customer's state: the newest not-ended one, else
    the newest of all."""
    if not subs:
        return None
    live = [s for s in subs if s.get("status") not in ("canceled", "incomplete_expired")]
    return max(live or subs, key=lambda s: s.get("created") or 0)


def _compare(customer: Customer, sub: dict[str, Any] | None) -> list[dict[str, Any]]:
    drift = []
    if sub is None:
        if customer.status not in _NO_SUBSCRIPTION_OK and not _overlaid(customer):
            drift.append(
                {"category": "status_mismatch", "local": customer.status, "stripe": "none"}
            )
        return drift
    expected = status_map.SUBSCRIPTION_STATUS.get(sub.get("status", ""))
    if expected and customer.status != expected and not _overlaid(customer):
        drift.append({"category": "status_mismatch", "local": customer.status, "stripe": expected})
    fields = subscription_fields(sub)
    if fields["plan_id"] and customer.plan_id != fields["plan_id"]:
        drift.append(
            {"category": "plan_mismatch", "local": customer.plan_id, "stripe": fields["plan_id"]}
        )
    if fields["current_period_end"] and customer.current_period_end != fields["current_period_end"]:
        drift.append(
            {
                "category": "period_end_mismatch",
                "local": customer.current_period_end.isoformat()
                if customer.current_period_end
                else None,
                "stripe": fields["current_period_end"].isoformat(),
            }
        )
    return drift


def reconcile_run(*, repair: bool, progress: Progress | None = None) -> ReconcileRun:
    run = ReconcileRun.objects.create(repair=repair)
    counts: Counter[str] = Counter()
    details: list[dict[str, Any]] = []
    say = progress or (lambda label, n: None)
    try:
        stripe_customers: dict[str, dict[str, Any]] = {}
        for obj in stripe_client.list_all("customer"):
            stripe_customers[obj["id"]] = obj
            say("customers", None)
        subs_by_customer: dict[str, list[dict[str, Any]]] = {}
        for sub in stripe_client.list_all("subscription", status="all"):
            customer_id = shapes.customer_id(sub)
            subs_by_customer.setdefault(customer_id, []).append(sub)
            say("subscriptions", None)

        local = {
            c.stripe_customer_id: c
            for c in Customer.objects.filter(stripe_customer_id__isnull=False)
        }
        for stripe_id, obj in stripe_customers.items():
            sub = _current_subscription(subs_by_customer.get(stripe_id, []))
            customer = local.get(stripe_id)
            if customer is None:
                items = [{"category": "missing_locally", "local": None, "stripe": stripe_id}]
            else:
                items = _compare(customer, sub)
            for item in items:
                item["stripe_customer_id"] = stripe_id
                counts[item["category"]] += 1
                if len(details) < 200:
                    details.append(item)
            if repair and items:
                _repair(run, stripe_id, obj, sub, items)
            say("compared", len(stripe_customers))
        for stripe_id, customer in local.items():
            if stripe_id not in stripe_customers:
                item = {
                    "category": "unknown_locally",
                    "local": str(customer.pk),
                    "stripe": None,
                    "stripe_customer_id": stripe_id,
                }
                counts["unknown_locally"] += 1
                if len(details) < 200:
                    details.append(item)
                if repair:
                    _flag_unknown(run, customer)
    except stripe_client.StripeUnavailable as exc:
        run.error = str(exc)[:2000]
    run.finished_at = timezone.now()
    run.drift_counts = {category: counts.get(category, 0) for category in CATEGORIES}
    run.drift_total = sum(counts.values())
    run.details = details
    run.save()
    return run


def _snapshot(customer: Customer | None) -> dict[str, Any]:
    if customer is None:
        return {}
    return {
        "status": customer.status,
        "plan_id": customer.plan_id,
        "current_period_end": customer.current_period_end.isoformat()
        if customer.current_period_end
        else None,
    }


def _repair(
    run: ReconcileRun,
    stripe_id: str,
    obj: dict[str, Any],
    sub: dict[str, Any] | None,
    items: list[dict[str, Any]],
) -> None:
    now = timezone.now()
    before = _snapshot(Customer.objects.filter(stripe_customer_id=stripe_id).first())
    with transaction.atomic():
        result = project(
            event_id=f"reconcile:{run.pk}",
            event_type="customer.updated",
            created=now,
            obj=obj,
            refetch=False,
        )
        if sub is not None:
            result = project(
                event_id=f"reconcile:{run.pk}",
                event_type="customer.subscription.updated",
                created=now,
                obj=sub,
                refetch=False,
                authoritative=True,
            )
        elif any(i["category"] == "status_mismatch" for i in items):
            # Stripe has no subscription at all for this customer: whatever we had ended.
            ended = {
                "object": "subscription",
                "id": "",
                "customer": stripe_id,
                "status": "canceled",
            }
            result = project(
                event_id=f"reconcile:{run.pk}",
                event_type="customer.subscription.deleted",
                created=now,
                obj=ended,
                refetch=False,
                authoritative=True,
            )
        customer = Customer.objects.get(pk=result.customer_id)
        audit_record(
            action=codes.BILLING_RECONCILE_REPAIRED,
            target=customer,
            data={
                "reconcile_run": run.pk,
                "drift": [i["category"] for i in items],
                "before": before,
                "after": _snapshot(customer),
            },
        )


def _flag_unknown(run: ReconcileRun, customer: Customer) -> None:
    with transaction.atomic():
        before = _snapshot(customer)
        Customer.objects.filter(pk=customer.pk).update(
            match_state=MatchState.CONFLICT,
            review_reason=f"Stripe has no customer {customer.stripe_customer_id} (reconcile {run.pk}).",
        )
        audit_record(
            action=codes.BILLING_RECONCILE_REPAIRED,
            target=customer,
            data={
                "reconcile_run": run.pk,
                "drift": ["unknown_locally"],
                "before": before,
                "after": {"match_state": MatchState.CONFLICT},
            },
        )
