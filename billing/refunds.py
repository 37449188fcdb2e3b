"""Refunds: issue one, or ask for one and have a second person approve or reject it.

Entry point for the console: :func:`refund_submit` decides whether a refund is issued at
once (``issue_refund`` holders, up to ``REFUND_APPROVAL_THRESHOLD``) or becomes a
:class:`~billing.models.RefundRequest` (above the threshold, or asked for by someone who
may only request). :func:`refund_request_approve` issues an approved request's refund;
nobody approves their own request.

Refundable amount. Stripe is the truth, but a refund just sent may not show in Stripe's
charge yet and a refund made elsewhere (Stripe's dashboard) is not in our rows, so the
refund must fit both what Stripe says is left and what our own open and sent refunds
leave. When our rows alone already rule the amount out, it is refused without calling
Stripe at all. Refunds of one charge are serialised by an advisory lock on the charge id.

Local billing state is never written here: ``charge.refunded`` does it, through the
pipeline, and then marks the action confirmed (billing/confirmations.py).
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone
from guardian.shortcuts import assign_perm

from audit import codes
from audit.services import audit_record
from billing import actions, orders, permissions
from billing.adapters import stripe_client
from billing.models import (
    ActionKind,
    ActionState,
    FinanceAction,
    RefundRequest,
    RefundRequestStatus,
)
from config.locks import advisory_xact_lock, try_advisory_lock
from config.money import format_money
from customers.models import Customer
from delivery.email import EMAIL, email_payload
from delivery.outbox import outbox_write

REASON_CODES = {
    "duplicate": "Duplicate charge",
    "fraudulent": "Fraudulent charge",
    "requested_by_customer": "Requested by the customer",
    "service_issue": "Service issue",
    "other": "Other",
}
# Keys under which requests made from an approval are derived (uuid5 of the request).
_APPROVAL_NAMESPACE = uuid.UUID("6f1d3c1e-4b7a-4e59-9a55-0c2f5b0c9e41")


@dataclass(frozen=True)
class ChargeFacts:
    """What a refund of one charge is checked against."""

    charge_id: str
    amount: int
    currency: str
    refunded_in_stripe: int
    refunded_here: int  # our refund rows not failed: requested, submitted or confirmed
    connect: dict[str, Any] = field(default_factory=dict)
    """Connect refund parameters (billing/orders.py ``refund_params``), {} for most charges."""

    @property
    def refunded(self) -> int:
        return max(self.refunded_in_stripe, self.refunded_here)

    @property
    def refundable(self) -> int:
        return max(self.amount - self.refunded, 0)


def refunded_here(charge_id: str) -> int:
    return int(
        FinanceAction.objects.filter(kind=ActionKind.REFUND, charge_id=charge_id)
        .exclude(state=ActionState.FAILED)
        .aggregate(total=Sum("amount"))["total"]
        or 0
    )


def _known_charge_amount(customer: Customer, charge_id: str) -> tuple[int, str] | None:
    """The charge's amount as our earlier refunds of it recorded it, if any."""
    row = (
        FinanceAction.objects.filter(kind=ActionKind.REFUND, charge_id=charge_id, customer=customer)
        .exclude(params__charge_amount=None)
        .values_list("params", "currency")
        .first()
    )
    if row is None:
        return None
    return int(row[0]["charge_amount"]), row[1]


def charge_facts(customer: Customer, charge_id: str) -> ChargeFacts:
    """Read the charge from Stripe and check it is this customer's and refundable."""
    if not customer.stripe_customer_id:
        raise ValidationError("This customer is not linked to Stripe: there is nothing to refund.")
    charge = stripe_client.finance_read("charge", charge_id)
    owner = charge.get("customer")
    owner = owner.get("id") if isinstance(owner, dict) else owner
    if owner != customer.stripe_customer_id:
        raise ValidationError("That charge does not belong to this customer.")
    if charge.get("status") != "succeeded" or not charge.get("paid", True):
        raise ValidationError("Only a succeeded payment can be refunded.")
    return ChargeFacts(
        charge_id=charge_id,
        amount=int(charge.get("amount") or 0),
        currency=str(charge.get("currency") or ""),
        refunded_in_stripe=int(charge.get("amount_refunded") or 0),
        refunded_here=refunded_here(charge_id),
        connect=orders.refund_params(charge),
    )


def _validate(amount: Any, reason_code: str, note: str) -> int:
    try:
        value = int(amount)
    except (TypeError, ValueError):
        raise ValidationError("Enter the amount to refund.") from None
    if value <= 0:
        raise ValidationError("The refund amount must be more than zero.")
    if reason_code not in REASON_CODES:
        raise ValidationError("Choose a reason: " + ", ".join(REASON_CODES.values()) + ".")
    if not (note or "").strip():
        raise ValidationError("Say in a few words why this refund is made.")
    return value


def _too_much(amount: int, refundable: int, currency: str) -> ValidationError:
    if refundable <= 0:
        return ValidationError(
            f"Nothing is left to refund on this charge "
            f"(refunding {format_money(amount, currency)} was refused)."
        )
    return ValidationError(
        f"{format_money(amount, currency)} is more than what is still refundable "
        f"on this charge ({format_money(refundable, currency)}). Nothing was refunded."
    )


def _check_fits(customer: Customer, charge_id: str, amount: int) -> ChargeFacts:
    """Refuse an amount that does not fit; from our own rows first (no Stripe call)."""
    known = _known_charge_amount(customer, charge_id)
    if known is not None:
        charge_amount, currency = known
        left = charge_amount - refunded_here(charge_id)
        if amount > left:
            raise _too_much(amount, max(left, 0), currency)
    facts = charge_facts(customer, charge_id)
    if amount > facts.refundable:
        raise _too_much(amount, facts.refundable, facts.currency)
    return facts


def refund_issue(
    *,
    actor: Any,
    customer_id: Any,
    charge_id: str,
    amount: int,
    reason_code: str,
    note: str,
    submission_key: Any,
    approved_request: RefundRequest | None = None,
) -> FinanceAction:
    """Refund ``amount`` (smallest currency unit) of one of the customer's charges.

    Above ``REFUND_APPROVAL_THRESHOLD`` only through an approved request. Returns the
    action row (``submitted`` on success). Raises ``PermissionDenied`` (audited),
    ``ValidationError`` (nothing called), or ``StripeActionError`` (recorded, audited).
    """
    customer = Customer.objects.get(pk=customer_id)
    if approved_request is None:
        permissions.require(
            permissions.can_issue_refund(actor, customer),
            user=actor,
            action="issue_refund",
            target=customer,
        )
    key = actions.submission_key(submission_key)
    existing = actions.action_find(key, kind=ActionKind.REFUND, customer_id=customer.pk)
    if existing is not None:
        return existing  # a double submit: the first one is the refund
    amount = _validate(amount, reason_code, note)
    if approved_request is None and amount > settings.REFUND_APPROVAL_THRESHOLD:
        raise ValidationError(
            f"Refunds above {settings.REFUND_APPROVAL_THRESHOLD / 100:,.2f} (in the charge's "
            "currency) need a second person's approval: submit it as a refund request."
        )
    facts = _check_fits(customer, charge_id, amount)
    # A marketplace order paid to a seller: the refund reverses the transfer and the fee.
    connect = facts.connect
    with transaction.atomic():
        advisory_xact_lock(f"refund:{charge_id}")
        left = facts.amount - max(facts.refunded_in_stripe, refunded_here(charge_id))
        if amount > left:  # another refund of this charge got in first
            raise _too_much(amount, max(left, 0), facts.currency)
        action, created = actions.action_open(
            key=key,
            kind=ActionKind.REFUND,
            customer=customer,
            actor=actor,
            refund_request=approved_request,
            charge_id=charge_id,
            amount=amount,
            currency=facts.currency,
            reason_code=reason_code,
            note=note.strip(),
            params={
                "charge_amount": facts.amount,
                "connect": connect,
                "audit": {
                    "charge_id": charge_id,
                    **connect,
                    "amount": amount,
                    "currency": facts.currency,
                    "before": {"refunded": facts.refunded, "refundable": facts.refundable},
                    "after": {
                        "refunded": facts.refunded + amount,
                        "refundable": facts.refundable - amount,
                    },
                    "refund_request": approved_request.pk if approved_request else None,
                },
            },
        )
    if not created:
        return action
    return actions.action_send(action_pk=action.pk)


def refund_request_create(
    *,
    actor: Any,
    customer_id: Any,
    charge_id: str,
    amount: int,
    reason_code: str,
    note: str,
    submission_key: Any,
) -> RefundRequest:
    """Ask for a refund that another finance admin or owner must approve."""
    customer = Customer.objects.get(pk=customer_id)
    permissions.require(
        permissions.can_request_refund(actor, customer),
        user=actor,
        action="request_refund",
        target=customer,
    )
    key = actions.submission_key(submission_key)
    existing = RefundRequest.objects.filter(key=key).first()
    if existing is not None:
        if existing.customer_id != customer.pk:
            raise ValidationError("This form was already used for another customer; open it again.")
        return existing
    amount = _validate(amount, reason_code, note)
    facts = _check_fits(customer, charge_id, amount)
    with transaction.atomic():
        refund_request, created = RefundRequest.objects.get_or_create(
            key=key,
            defaults=dict(
                customer=customer,
                charge_id=charge_id,
                amount=amount,
                currency=facts.currency,
                charge_amount=facts.amount,
                reason_code=reason_code,
                note=note.strip(),
                requested_by=actor,
            ),
        )
        if created:
            # The requester follows their own request (object permission, django-guardian).
            assign_perm(permissions.VIEW_REFUNDREQUEST, actor, refund_request)
            audit_record(
                action=codes.BILLING_REFUND_REQUESTED,
                actor=actor,
                target=customer,
                data={
                    "refund_request": refund_request.pk,
                    "charge_id": charge_id,
                    "amount": amount,
                    "currency": facts.currency,
                    "reason_code": reason_code,
                    "reason": note.strip(),
                    "refundable": facts.refundable,
                    "threshold": settings.REFUND_APPROVAL_THRESHOLD,
                },
            )
    return refund_request


def refund_submit(
    *,
    actor: Any,
    customer_id: Any,
    charge_id: str,
    amount: int,
    reason_code: str,
    note: str,
    submission_key: Any,
) -> FinanceAction | RefundRequest:
    """The console's refund button: issue it now, or file it for approval."""
    customer = Customer.objects.get(pk=customer_id)
    if (
        permissions.can_issue_refund(actor, customer)
        and amount is not None
        and int(amount) <= settings.REFUND_APPROVAL_THRESHOLD
    ):
        return refund_issue(
            actor=actor,
            customer_id=customer_id,
            charge_id=charge_id,
            amount=amount,
            reason_code=reason_code,
            note=note,
            submission_key=submission_key,
        )
    return refund_request_create(
        actor=actor,
        customer_id=customer_id,
        charge_id=charge_id,
        amount=amount,
        reason_code=reason_code,
        note=note,
        submission_key=submission_key,
    )


def _check_decider(actor: Any, request_id: int, verb: str) -> None:
    """Refuse (audited) a decider who may not decide this request. Checked before the
    request is locked, so the audit entry of the refusal is not rolled back with it."""
    refund_request = RefundRequest.objects.select_related("customer").get(pk=request_id)
    if not permissions.can_approve_refund(actor, refund_request):
        own = refund_request.requested_by_id == getattr(actor, "pk", None)
        raise permissions.deny(
            user=actor,
            action=f"{verb}_refund_request",
            target=refund_request.customer,
            detail=(
                f"own request #{refund_request.pk}" if own else f"request #{refund_request.pk}"
            ),
        )


def _lock_request(request_id: int) -> RefundRequest:
    return (
        RefundRequest.objects.select_for_update()
        .select_related("requested_by", "customer")
        .get(pk=request_id)
    )


def _decide(refund_request: RefundRequest, *, actor: Any, status: str, note: str) -> None:
    """Record a decision on a locked pending request, audited with before/after."""
    refund_request.status = status
    refund_request.decided_by = actor
    refund_request.decided_at = timezone.now()
    refund_request.decision_note = (note or "").strip()
    refund_request.save(update_fields=["status", "decided_by", "decided_at", "decision_note"])
    audit_record(
        action=(
            codes.BILLING_REFUND_APPROVED
            if status == RefundRequestStatus.APPROVED
            else codes.BILLING_REFUND_REJECTED
        ),
        actor=actor,
        target=refund_request.customer,
        data={
            "refund_request": refund_request.pk,
            "amount": refund_request.amount,
            "currency": refund_request.currency,
            "charge_id": refund_request.charge_id,
            "requested_by": refund_request.requested_by.get_username(),
            "before": RefundRequestStatus.PENDING.value,
            "after": status,
            "reason": refund_request.decision_note,
        },
    )


def _notify_requester(refund_request: RefundRequest, subject: str, body: str) -> None:
    """Email the requester the decision, through the outbox (retried, sent once)."""
    email = refund_request.requested_by.email
    if email:
        outbox_write(
            channel=EMAIL,
            kind="email_refund_decision",
            dedupe_key=f"email:refund_decision:{refund_request.pk}",
            cause=f"refund_request:{refund_request.pk}",
            payload=email_payload(to=email, subject=subject, body=body),
        )


ALREADY_IN_PROGRESS = (
    "This refund request is already being approved by someone else right "
    "now. Reload the page in a moment to see the result."
)


def _approval_lock_name(request_id: int) -> str:
    return f"refund-approval:{request_id}"


def _approval_key(refund_request: RefundRequest) -> uuid.UUID:
    """The submission key of the refund one approval stands for. Derived from the request
    and the moment of that approval, so finishing an interrupted approval reuses the key
    (and Stripe idempotency key) it would have used, while a new approval after Stripe
    refused gets a new one."""
    decided_at = refund_request.decided_at
    stamp = decided_at.astimezone(datetime.UTC).isoformat() if decided_at else "0"
    return uuid.uuid5(_APPROVAL_NAMESPACE, f"{refund_request.pk}:{stamp}")


def refund_request_approve(*, actor: Any, request_id: int, note: str = "") -> FinanceAction:
    """Approve another person's request: the refund is issued at once.

    The decision is committed first, then the refund is issued (Stripe is never called
    inside the decision's transaction). If Stripe then refuses, the request goes back to
    pending (with Stripe's message), so it can be approved again or rejected.

    Approving an approved request returns its action; if the action row is missing (the
    earlier approval died between its commit and the row), this approval finishes it with
    the same key, so Stripe cannot refund twice. While another approval of the request is
    still running, a ``ValidationError`` says so (the console shows it; nothing is done).
    """
    _check_decider(actor, request_id, "approve")
    # The claim on carrying out this approval is a session-level advisory lock, not a row
    # lock: it spans the commit of the decision and the Stripe call (no transaction is
    # held open over Stripe), and PostgreSQL releases it when the holder's connection
    # ends, so an approval that died half-way never blocks the next one.
    with try_advisory_lock(_approval_lock_name(request_id)) as claimed:
        if not claimed:
            raise ValidationError(ALREADY_IN_PROGRESS)
        return _approve(actor=actor, request_id=request_id, note=note)


def _approve(*, actor: Any, request_id: int, note: str) -> FinanceAction:
    with transaction.atomic():
        refund_request = _lock_request(request_id)
        if refund_request.status == RefundRequestStatus.APPROVED:
            done = FinanceAction.objects.filter(refund_request=refund_request).first()
            if done is not None:
                return done  # approved twice (double click, two approvers): the first one
            # Approved, but no action row: the approval that decided it stopped before
            # writing it (we hold the claim, so it is not running). Finish it below.
        elif refund_request.status != RefundRequestStatus.PENDING:
            raise ValidationError(f"This request was already {refund_request.status}.")
        else:
            _decide(refund_request, actor=actor, status=RefundRequestStatus.APPROVED, note=note)
    attempt = FinanceAction.objects.filter(refund_request=refund_request).first()
    try:
        if attempt is not None and attempt.state != ActionState.FAILED:
            # Approved before and Stripe's answer was lost: send the same row again (same
            # idempotency key), never a second refund.
            action = actions.action_send(action_pk=attempt.pk, actor=actor)
        else:
            if attempt is not None:
                # Stripe refused an earlier approval: it keeps its own (failed) row.
                FinanceAction.objects.filter(pk=attempt.pk).update(refund_request=None)
            action = refund_issue(
                actor=actor,
                customer_id=refund_request.customer_id,
                charge_id=refund_request.charge_id,
                amount=refund_request.amount,
                reason_code=refund_request.reason_code,
                note=refund_request.note,
                submission_key=_approval_key(refund_request),
                approved_request=refund_request,
            )
    except (ValidationError, stripe_client.StripeActionError) as exc:
        if not getattr(exc, "outcome_unknown", False):
            message = getattr(exc, "user_message", None) or "; ".join(
                getattr(exc, "messages", [str(exc)])
            )
            RefundRequest.objects.filter(pk=refund_request.pk).update(
                status=RefundRequestStatus.PENDING,
                decided_by=None,
                decided_at=None,
                decision_note=(
                    f"Approval by {actor.get_username()} could not be carried out: {message}"
                )[:2000],
            )
        raise
    _notify_requester(
        refund_request,
        f"Your refund request #{refund_request.pk} was approved",
        f"{actor.get_username()} approved your request to refund "
        f"{format_money(refund_request.amount, refund_request.currency)} of charge "
        f"{refund_request.charge_id} ({refund_request.customer}). It was sent to Stripe.\n"
        + (f"\nNote: {note.strip()}\n" if note and note.strip() else ""),
    )
    return action


def refund_request_reject(*, actor: Any, request_id: int, reason: str) -> RefundRequest:
    """Reject another person's request, saying why; nothing is refunded."""
    if not (reason or "").strip():
        raise ValidationError("Say why the request is rejected; the requester will read it.")
    _check_decider(actor, request_id, "reject")
    with transaction.atomic():
        refund_request = _lock_request(request_id)
        if refund_request.status != RefundRequestStatus.PENDING:
            raise ValidationError(f"This request was already {refund_request.status}.")
        _decide(refund_request, actor=actor, status=RefundRequestStatus.REJECTED, note=reason)
        _notify_requester(
            refund_request,
            f"Your refund request #{refund_request.pk} was rejected",
            f"{actor.get_username()} rejected your request to refund "
            f"{format_money(refund_request.amount, refund_request.currency)} of charge "
            f"{refund_request.charge_id} ({refund_request.customer}).\n\nReason: {reason.strip()}\n",
        )
    return refund_request
