"""Who may do which finance action: the single source of each rule.

Roles grant the model-level permissions (customers/roles.py); these functions add the
object rules (the two-person rule, the requester's own request). Services and views both
call them; templates use them only to hide buttons, which is never the control.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db import transaction

from audit import codes
from audit.services import audit_record
from customers.permissions import (
    APPROVE_REFUND,
    CANCEL_SUBSCRIPTION,
    CHANGE_PLAN,
    ISSUE_REFUND,
    REQUEST_REFUND,
    VIEW_BILLING,
)

VIEW_REFUNDREQUEST = "billing.view_refundrequest"  # also per request, to its requester
VIEW_RECONCILERUN = "billing.view_reconcilerun"


def _active_staff(user: Any) -> bool:
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and user.is_active
        and user.is_staff
    )


def can_view_billing(user: Any, customer: Any = None) -> bool:
    return _active_staff(user) and user.has_perm(VIEW_BILLING)


def can_issue_refund(user: Any, customer: Any = None) -> bool:
    return _active_staff(user) and user.has_perm(ISSUE_REFUND)


def can_request_refund(user: Any, customer: Any = None) -> bool:
    return _active_staff(user) and user.has_perm(REQUEST_REFUND)


def can_change_plan(user: Any, customer: Any = None) -> bool:
    return _active_staff(user) and user.has_perm(CHANGE_PLAN)


def can_cancel_subscription(user: Any, customer: Any = None) -> bool:
    return _active_staff(user) and user.has_perm(CANCEL_SUBSCRIPTION)


def can_resume_subscription(user: Any, customer: Any = None) -> bool:
    # Resuming undoes a cancellation: the same people may do both.
    return can_cancel_subscription(user, customer)


def can_approve_refund(user: Any, refund_request: Any = None) -> bool:
    """Approvers hold ``approve_refund``; nobody approves (or rejects) their own request."""
    if not (_active_staff(user) and user.has_perm(APPROVE_REFUND)):
        return False
    return refund_request is None or refund_request.requested_by_id != user.pk


def can_view_refund_request(user: Any, refund_request: Any) -> bool:
    """Approvers see every request; a requester sees their own (guardian object perm)."""
    if not _active_staff(user):
        return False
    return user.has_perm(APPROVE_REFUND) or user.has_perm(VIEW_REFUNDREQUEST, refund_request)


def deny(*, user: Any, action: str, target: Any = None, detail: str = "") -> PermissionDenied:
    """Audit a refused attempt (committed even though the caller then raises) and return
    the ``PermissionDenied`` to raise."""
    with transaction.atomic():
        audit_record(
            action=codes.PERMISSION_DENIED,
            actor=user,
            target=target,
            data={"attempted": action, "detail": detail},
        )
    return PermissionDenied(f"You may not {action.replace('_', ' ')}.")


def require(allowed: bool, *, user: Any, action: str, target: Any = None) -> None:
    """Raise an audited ``PermissionDenied`` unless ``allowed``."""
    if not allowed:
        raise deny(user=user, action=action, target=target)
