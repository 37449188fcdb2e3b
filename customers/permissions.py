"""Permission rules of the console's read views, one function per rule."""

from __future__ import annotations

from typing import Any


def can_view_console(user: Any) -> bool:
    """The operations dashboard and customer pages: every staff role."""
    return bool(user.is_active and user.is_staff and user.has_perm("customers.view_customer"))


def can_view_finance_details(user: Any) -> bool:
    """Finance-only numbers and timeline items (refunds, disputes, payment volumes,
    reconcile drift, staff finance decisions): owners and finance admins, not support
    agents. Tied to the refund-issuing permission because whoever may move money may
    see how money moved."""
    return bool(user.has_perm("customers.issue_refund"))
