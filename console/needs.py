"""The "needs you" strip (admin index and dashboard): counts of what waits for a person,
each linking to the rows behind it, each shown only to who may act on or see it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Q
from django.urls import reverse

from billing import permissions as billing_permissions
from billing.models import RefundRequest, RefundRequestStatus
from console.alerts import can_view_alerts
from console.dashboard import changelist_url
from console.models import Alert, AlertState
from customers.models import BillingStatus, Customer, MatchState
from customers.permissions import can_view_console
from delivery.models import OutboxMessage, OutboxState

NEEDS_REVIEW = Q(status=BillingStatus.NEEDS_REVIEW) | Q(
    match_state__in=[MatchState.CONFLICT, MatchState.MATCHED_BY_EMAIL]
)


@dataclass
class Need:
    key: str
    label: str
    count: int
    url: str | None


def needs_you(user: Any) -> list[Need]:
    if not can_view_console(user):
        return []
    needs: list[Need] = []
    if billing_permissions.can_approve_refund(user):
        pending = RefundRequest.objects.filter(status=RefundRequestStatus.PENDING)
        needs.append(
            Need(
                "refund-requests",
                "refund requests waiting for approval",
                pending.exclude(requested_by=user).count(),
                reverse("billing:refund_requests"),
            )
        )
    dead_url = changelist_url(user, OutboxMessage, state__exact=OutboxState.DEAD)
    if dead_url:
        needs.append(
            Need(
                "dead-deliveries",
                "dead deliveries",
                OutboxMessage.objects.filter(state=OutboxState.DEAD).count(),
                dead_url,
            )
        )
    if can_view_alerts(user):
        needs.append(
            Need(
                "open-alerts",
                "open alerts",
                Alert.objects.filter(state=AlertState.OPEN).count(),
                changelist_url(user, Alert, state__exact=AlertState.OPEN),
            )
        )
    needs.append(
        Need(
            "needs-review",
            "customers needing review",
            Customer.objects.filter(NEEDS_REVIEW).count(),
            changelist_url(user, Customer, review="yes"),
        )
    )
    return needs
