"""Permission rules of the console's read views, one function per rule, and the names
of the permissions customers defines or checks (code uses these, never the strings)."""

from __future__ import annotations

from typing import Any

VIEW_CUSTOMER = "customers.view_customer"
ADD_CUSTOMER = "customers.add_customer"
CHANGE_CUSTOMER = "customers.change_customer"
VIEW_BILLING = "customers.view_billing"
REQUEST_REFUND = "customers.request_refund"
ISSUE_REFUND = "customers.issue_refund"
APPROVE_REFUND = "customers.approve_refund"
CHANGE_PLAN = "customers.change_plan"
CANCEL_SUBSCRIPTION = "customers.cancel_subscription"
REPLAY_EVENTS = "customers.replay_events"
ERASE_CUSTOMER = "customers.erase_customer"
# Staff accounts (django.contrib.auth), managed from customers/services.py.
ADD_USER = "auth.add_user"
CHANGE_USER = "auth.change_user"


def can_view_console(user: Any) -> bool:
    """The operations dashboard and customer pages: every staff role."""
    return bool(user.is_active and user.is_staff and user.has_perm(VIEW_CUSTOMER))


def can_view_finance_details(user: Any) -> bool:
    """Finance-only numbers and timeline items (refunds, disputes, payment volumes,
    reconcile drift, staff finance decisions): owners and finance admins, not support
    agents. Tied to the refund-issuing permission because whoever may move money may
    see how money moved."""
    return bool(user.has_perm(ISSUE_REFUND))
