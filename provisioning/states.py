"""Provisioning as a state machine: ``customers.Customer.onboarding_state``.

::

    paid ──▶ pending_provisioning ──2xx to customer.entitled / POST …/provisioned──▶ active
                 │        ▲                                                         │
         failure ▼        │ staff retried                                           │
              retrying ───┴──▶ failed (the outbox row is dead: alert + ticket)       │
                 └──────────────▶ active (a later attempt got 2xx)                   │
    any entitled state ──dunning policy / subscription ended──▶ revoked ◀───────────┘
    revoked ──paid again──▶ pending_provisioning (a new generation: a new customer.entitled)

Only this module writes ``onboarding_state``; every move is a :class:`Transition` row.
Moves are checked against :data:`ALLOWED`, and outcomes name the generation of the grant
they answer, so a late answer to an older grant, a replayed Stripe event or a duplicate
delivery never moves the state back. The welcome email is written when the state
becomes ``active`` for the first time (one per customer, by dedupe key).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.template.loader import render_to_string
from django.utils import timezone

from config import problems
from customers.models import BillingStatus as S
from customers.models import Customer
from customers.models import OnboardingState as O
from delivery.email import EMAIL, email_payload
from delivery.outbox import outbox_write
from provisioning import dunning, webhooks
from provisioning.models import Entitlement, Transition

logger = logging.getLogger(__name__)

ALLOWED: dict[str, set[str]] = {
    O.PENDING_PROVISIONING: {O.RETRYING, O.ACTIVE, O.FAILED, O.REVOKED},
    O.RETRYING: {O.ACTIVE, O.FAILED, O.REVOKED},
    O.FAILED: {O.RETRYING, O.ACTIVE, O.REVOKED},
    O.ACTIVE: {O.REVOKED},
    O.REVOKED: {O.PENDING_PROVISIONING},
}
# Billing statuses that grant access (with a plan), and those that end it. Past due,
# unpaid and disputed keep access: the dunning policy decides about failed payments.
GRANTS = {S.ACTIVE, S.TRIALING}
ENDS = {S.CANCELED, S.INCOMPLETE_EXPIRED, S.REFUNDED, S.PAUSED}
WELCOME = "email_welcome"


def failed_alert_key(customer_id: Any) -> str:
    return f"provisioning:failed:{customer_id}"


def locked(customer_id: Any) -> tuple[Customer, Entitlement]:
    """The customer and its entitlement, locked (call inside a transaction)."""
    customer = Customer.objects.select_for_update().get(pk=customer_id)
    # Locked as it is read (one query when it exists, the usual case).
    entitlement, _ = Entitlement.objects.select_for_update().get_or_create(customer=customer)
    return customer, entitlement


def _move(
    customer: Customer, entitlement: Entitlement, to: str, *, reason: str, cause: str
) -> bool:
    before = entitlement.state
    if to != before and to not in ALLOWED.get(before, set()):
        logger.info("provisioning %s: %s -> %s not allowed; kept", customer.pk, before, to)
        return False
    now = timezone.now()
    entitlement.state = to
    entitlement.reason = reason[:300]
    entitlement.state_since = now
    entitlement.save()
    Customer.objects.filter(pk=customer.pk).update(onboarding_state=to, updated_at=now)
    customer.onboarding_state = to
    Transition.objects.create(
        customer=customer,
        generation=entitlement.generation,
        from_state=before,
        to_state=to,
        reason=reason[:300],
        cause=cause[:255],
        at=now,
    )
    return True


def _current(entitlement: Entitlement, generation: Any) -> bool:
    """Whether an outcome for ``generation`` still speaks about the current grant."""
    return entitlement.entitled and (generation is None or generation == entitlement.generation)


# --- outcomes from the product ---------------------------------------------------------


def provisioned(customer_id: Any, *, generation: Any = None, how: str, cause: str) -> bool:
    """The product confirmed access (a 2xx to ``customer.entitled``, or the API). True
    when the customer became active now; False when already active or not entitled."""
    with transaction.atomic():
        customer, entitlement = locked(customer_id)
        if not _current(entitlement, generation) or entitlement.state == O.ACTIVE:
            return False
        if not _move(customer, entitlement, O.ACTIVE, reason=f"provisioned: {how}", cause=cause):
            return False
        _welcome(customer, cause=cause)
        problems.resolve(key=failed_alert_key(customer.pk))
    return True


def delivery_failed(
    customer_id: Any, *, generation: Any, error: str, attempt: int, cause: str
) -> None:
    """An attempt to deliver ``customer.entitled`` failed: the outbox retries it."""
    with transaction.atomic():
        customer, entitlement = locked(customer_id)
        if not _current(entitlement, generation) or entitlement.state == O.ACTIVE:
            return
        reason = f"attempt {attempt} failed: {error}; retried with backoff"
        if entitlement.state == O.RETRYING:
            entitlement.reason = reason[:300]
            entitlement.save(update_fields=["reason", "updated_at"])
            return
        _move(customer, entitlement, O.RETRYING, reason=reason, cause=cause)


def provisioning_failed(customer_id: Any, *, generation: Any, reason: str, cause: str) -> None:
    """``customer.entitled`` could not be delivered for good: failed, and an alert."""
    with transaction.atomic():
        customer, entitlement = locked(customer_id)
        if not _current(entitlement, generation) or entitlement.state not in (
            O.PENDING_PROVISIONING,
            O.RETRYING,
        ):
            return
        _move(customer, entitlement, O.FAILED, reason=reason, cause=cause)
        problems.report(
            key=failed_alert_key(customer.pk),
            title=f"Provisioning failed for {customer.display_name}: the product never "
            "confirmed customer.entitled",
            detail=f"{reason}. The customer paid but has no access and no welcome email. "
            "Fix the product endpoint, then retry the outbox row (Admin -> Outbox "
            "messages) or have the product confirm with POST "
            f"/api/v1/customers/{customer.pk}/provisioned.",
        )


def _welcome(customer: Customer, *, cause: str) -> None:
    if not customer.email:
        logger.warning("provisioning %s: no email address; no welcome email", customer.pk)
        return
    context = {
        "name": customer.name or "there",
        "plan": customer.plan_name or "subscription",
        "product": settings.EMAIL_PRODUCT_NAME,
    }
    outbox_write(
        channel=EMAIL,
        kind=WELCOME,
        customer=customer,
        cause=cause,
        dedupe_key=f"email:welcome:{customer.pk}",
        payload=email_payload(
            to=customer.email,
            subject=render_to_string("emails/welcome_subject.txt", context).strip(),
            body=render_to_string("emails/welcome.txt", context),
        ),
    )


# --- entitlement from billing state and the dunning policy -----------------------------


def entitlement_sync(customer_id: Any, *, cause: str, now: datetime | None = None) -> str:
    """Compare the customer's billing state with what the product was told, and send
    what changed: ``customer.entitled``, ``customer.entitlement_changed`` or
    ``customer.revoked``. Idempotent: the same state again sends nothing."""
    now = now or timezone.now()
    with transaction.atomic():
        customer, entitlement = locked(customer_id)
        return sync(customer, entitlement, cause=cause, now=now)


def sync(customer: Customer, entitlement: Entitlement, *, cause: str, now: datetime) -> str:
    if customer.erased_at is not None:
        return "nothing to do: the customer's data was erased on request"
    assessment = dunning.assess(entitlement, now)
    if not entitlement.entitled:
        if customer.status in GRANTS and customer.plan_id and not assessment.revoke:
            return _grant(customer, entitlement, cause=cause, now=now)
        return f"not entitled ({customer.status}); {assessment.reason}"
    if assessment.revoke:
        return _revoke(customer, entitlement, reason=assessment.reason, cause=cause, now=now)
    if customer.status in ENDS:
        return _revoke(
            customer,
            entitlement,
            reason=f"the subscription ended ({customer.get_status_display().lower()})",
            cause=cause,
            now=now,
        )
    if customer.plan_id and customer.plan_id != entitlement.plan_id:
        return _plan_changed(customer, entitlement, cause=cause)
    return f"entitled, unchanged ({entitlement.state}); {assessment.reason}"


def _grant(customer: Customer, entitlement: Entitlement, *, cause: str, now: datetime) -> str:
    entitlement.entitled = True
    entitlement.generation += 1
    entitlement.plan_id = customer.plan_id
    entitlement.entitled_at = now
    entitlement.revoked_at = None
    generation = entitlement.generation
    rows = _send_entitled(customer, generation, cause=cause)
    reason = (
        "paid; waiting for the product to confirm customer.entitled"
        if rows
        else "paid; no product endpoint is enabled: waiting for the product to confirm "
        "through the API"
    )
    if entitlement.state == O.PENDING_PROVISIONING:
        entitlement.reason = reason
        entitlement.state_since = now
        entitlement.save()
        Transition.objects.create(
            customer=customer,
            generation=generation,
            from_state="",
            to_state=O.PENDING_PROVISIONING,
            reason=reason,
            cause=cause[:255],
            at=now,
        )
        Customer.objects.filter(pk=customer.pk).update(
            onboarding_state=O.PENDING_PROVISIONING, updated_at=now
        )
    else:
        _move(customer, entitlement, O.PENDING_PROVISIONING, reason=reason, cause=cause)
    return f"entitled (generation {generation}): customer.entitled to {len(rows)} endpoint(s)"


def entitled_resend(*, cause: str) -> int:
    """Send ``customer.entitled`` of the current grant to endpoints that do not have it
    yet: customers who paid before an endpoint was added or enabled are not left waiting.
    Endpoints that already have the message write nothing (same dedupe key). Returns the
    rows written."""
    written = 0
    waiting = Entitlement.objects.filter(
        entitled=True, state__in=(O.PENDING_PROVISIONING, O.RETRYING, O.FAILED)
    ).select_related("customer")
    for entitlement in waiting.iterator():
        customer = entitlement.customer
        if customer.erased_at is not None:
            continue
        written += len(_send_entitled(customer, entitlement.generation, cause=cause))
    return written


def _send_entitled(customer: Customer, generation: int, *, cause: str) -> list:
    return webhooks.product_event_send(
        webhooks.ENTITLED,
        webhooks.customer_data(customer, entitlement={"generation": generation}),
        cause=cause,
        dedupe_key=f"customer.entitled:{customer.pk}:{generation}",
        customer=customer,
        meta={"generation": generation},
    )


def _revoke(
    customer: Customer, entitlement: Entitlement, *, reason: str, cause: str, now: datetime
) -> str:
    entitlement.entitled = False
    entitlement.revoked_at = now
    rows = webhooks.product_event_send(
        webhooks.REVOKED,
        webhooks.customer_data(
            customer, reason=reason, entitlement={"generation": entitlement.generation}
        ),
        cause=cause,
        dedupe_key=f"customer.revoked:{customer.pk}:{entitlement.generation}",
        customer=customer,
        meta={"generation": entitlement.generation},
    )
    entitlement.save()
    _move(customer, entitlement, O.REVOKED, reason=f"revoked: {reason}", cause=cause)
    problems.resolve(key=failed_alert_key(customer.pk))
    return f"revoked ({reason}): customer.revoked to {len(rows)} endpoint(s)"


def _plan_changed(customer: Customer, entitlement: Entitlement, *, cause: str) -> str:
    previous = entitlement.plan_id
    entitlement.plan_id = customer.plan_id
    entitlement.plan_changes += 1
    rows = webhooks.product_event_send(
        webhooks.ENTITLEMENT_CHANGED,
        webhooks.customer_data(
            customer,
            previous_plan={"id": previous or None},
            entitlement={"generation": entitlement.generation},
        ),
        cause=cause,
        dedupe_key=(
            f"customer.entitlement_changed:{customer.pk}:{entitlement.generation}:"
            f"{entitlement.plan_changes}"
        ),
        customer=customer,
        meta={"generation": entitlement.generation},
    )
    entitlement.save()
    return f"plan {previous} -> {customer.plan_id}: customer.entitlement_changed to {len(rows)} endpoint(s)"


def dunning_sweep(*, now: datetime | None = None) -> int:
    """Revoke customers whose grace ran out with no new event (``run_scheduler``).
    Returns how many were revoked."""
    now = now or timezone.now()
    revoked = 0
    candidates = Entitlement.objects.filter(entitled=True).exclude(failures={})
    for customer_id in candidates.values_list("customer_id", flat=True):
        note = entitlement_sync(customer_id, cause="dunning:sweep", now=now)
        revoked += note.startswith("revoked")
    return revoked
