"""The dunning policy: when failed payments take a customer's access away.

Settings: ``DUNNING_MAX_FAILURES`` failed invoice payments since the last successful
payment, and ``DUNNING_GRACE_DAYS`` since the first of those failures. Both must hold:
one failed charge never revokes by itself, and a customer who keeps failing is still
given the grace period. A successful payment newer than a failure ends it.

Facts are kept per Stripe event (``Entitlement.failures``), so duplicated deliveries
count once, and compared by Stripe's ``created``, so the order of arrival does not
matter. Stripe's own retries of one invoice send one ``invoice.payment_failed`` each,
with ``attempt_count`` counting them: the count is the larger of the failure events and
the highest ``attempt_count`` seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from billing import events
from billing.events import BillingEvent
from provisioning.models import Entitlement

FAILED = ("invoice.payment_failed",)
PAID = ("invoice.paid", "invoice.payment_succeeded", "invoice_payment.paid")


def _unix(at: datetime | None) -> int:
    return int(at.timestamp()) if at else 0


def record(entitlement: Entitlement, event: BillingEvent) -> bool:
    """Keep what ``event`` says about payments. True when a fact changed."""
    obj = event.object
    at = _unix(event.created)
    if event.type in FAILED:
        if event.event_id in entitlement.failures:
            return False
        try:
            attempt = int(obj.get("attempt_count") or 1)
        except (TypeError, ValueError):
            attempt = 1
        entitlement.failures = {
            **entitlement.failures,
            event.event_id: {"at": at, "attempt": max(attempt, 1), "invoice": obj.get("id") or ""},
        }
        return True
    if event.type in PAID:
        invoice = obj.get("id") if events.object_type(obj) == "invoice" else None
        invoice = invoice or events.linked_invoice_id(obj) or ""
        changed = False
        if at > entitlement.last_paid_at:
            entitlement.last_paid_at = at
            changed = True
        if invoice and invoice not in entitlement.paid_invoices:
            entitlement.paid_invoices = [*entitlement.paid_invoices, invoice][-50:]
            changed = True
        return changed
    return False


@dataclass(frozen=True)
class Assessment:
    failures: int
    first_failure_at: datetime | None
    revoke_at: datetime | None
    """When access goes if nothing is paid first (None: the failure count is not reached)."""
    revoke: bool
    reason: str


def assess(entitlement: Entitlement, now: datetime | None = None) -> Assessment:
    now = now or timezone.now()
    unpaid = [
        fact
        for fact in entitlement.failures.values()
        if fact["at"] > entitlement.last_paid_at
        and fact.get("invoice") not in entitlement.paid_invoices
    ]
    if not unpaid:
        return Assessment(0, None, None, False, "no unpaid failure")
    count = max(len(unpaid), max(int(fact.get("attempt") or 1) for fact in unpaid))
    first = datetime.fromtimestamp(min(fact["at"] for fact in unpaid), tz=UTC)
    limit = settings.DUNNING_MAX_FAILURES
    grace = timedelta(days=settings.DUNNING_GRACE_DAYS)
    if count < limit:
        return Assessment(
            count, first, None, False, f"{count} of {limit} failed payments: no revocation yet"
        )
    revoke_at = first + grace
    if now < revoke_at:
        return Assessment(
            count,
            first,
            revoke_at,
            False,
            f"{count} failed payments; grace until {revoke_at:%Y-%m-%d %H:%M} UTC",
        )
    return Assessment(
        count,
        first,
        revoke_at,
        True,
        f"dunning policy: {count} failed payments and {settings.DUNNING_GRACE_DAYS:g} days "
        f"of grace since {first:%Y-%m-%d}",
    )
