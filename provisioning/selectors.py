"""Reads for the console's provisioning pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from customers.models import OnboardingState as O
from delivery.models import OutboxMessage
from provisioning.models import Entitlement, ProductEndpoint
from provisioning.webhooks import CHANNEL

WAITING = (O.PENDING_PROVISIONING, O.RETRYING, O.FAILED)


@dataclass(frozen=True)
class Waiting:
    entitlement: Entitlement
    age: timedelta

    @property
    def customer(self):
        return self.entitlement.customer


def paid_not_onboarded(*, now: datetime | None = None, limit: int = 200) -> list[Waiting]:
    """Customers who paid and are not provisioned yet, oldest first."""
    now = now or timezone.now()
    rows = (
        Entitlement.objects.filter(entitled=True, state__in=WAITING)
        .select_related("customer")
        .order_by("entitled_at", "pk")[:limit]
    )
    return [Waiting(row, now - (row.entitled_at or row.state_since)) for row in rows]


def paid_not_onboarded_count() -> int:
    return Entitlement.objects.filter(entitled=True, state__in=WAITING).count()


def endpoint_deliveries(endpoint: ProductEndpoint, *, limit: int = 100) -> QuerySet:
    """The outbox rows of one endpoint, newest first."""
    return (
        OutboxMessage.objects.filter(channel=CHANNEL, payload__endpoint=endpoint.pk)
        .select_related("customer")
        .order_by("-created_at", "-pk")[:limit]
    )
