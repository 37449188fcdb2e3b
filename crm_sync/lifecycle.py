"""Internal billing status -> CRM lifecycle stage and tags: the one table (README has it).

``stage`` None leaves the contact's stage as it is: HubSpot lifecycle stages only move
forward, and a churned or disputed customer was still a customer. Tags are written as one
multi-value property (``switchboard_tags``) that replaces the previous value, so tags of
the old status are cleared when the status changes (recovered: ``payment_failed`` goes,
``paying`` comes back).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from customers.models import BillingStatus as S


@dataclass(frozen=True)
class Lifecycle:
    stage: str | None
    tags: tuple[str, ...]


LIFECYCLE: dict[str, Lifecycle] = {
    S.NONE: Lifecycle("lead", ()),
    S.INCOMPLETE: Lifecycle("lead", ("checkout_incomplete",)),
    S.INCOMPLETE_EXPIRED: Lifecycle("lead", ("checkout_abandoned",)),
    S.TRIALING: Lifecycle("opportunity", ("trial",)),
    S.ACTIVE: Lifecycle("customer", ("paying",)),
    S.PAST_DUE: Lifecycle("customer", ("payment_failed",)),
    S.UNPAID: Lifecycle("customer", ("payment_failed", "unpaid")),
    S.PAUSED: Lifecycle(None, ("paused",)),
    S.CANCELED: Lifecycle(None, ("churned",)),
    S.REFUNDED: Lifecycle(None, ("refunded", "churned")),
    S.DISPUTED: Lifecycle(None, ("disputed",)),
    S.NEEDS_REVIEW: Lifecycle(None, ("needs_review",)),
}

# Custom contact properties Switchboard owns in the CRM (create them once in HubSpot:
# Settings -> Properties -> Contact; switchboard_tags as a multiple-checkbox property).
STABLE_KEY_PROPERTY = "switchboard_customer_id"
TAGS_PROPERTY = "switchboard_tags"


def lifecycle_for(status: str) -> Lifecycle:
    return LIFECYCLE.get(status, Lifecycle(None, ()))


def contact_properties(customer: Any) -> dict[str, str]:
    """The CRM contact's properties for the canonical customer's current state."""
    lifecycle = lifecycle_for(customer.status)
    first, _, last = (customer.name or "").partition(" ")
    props = {
        STABLE_KEY_PROPERTY: str(customer.pk),
        "switchboard_status": customer.status,
        "switchboard_plan": customer.plan_name or customer.plan_id or "",
        TAGS_PROPERTY: ";".join(lifecycle.tags),
    }
    if customer.email:
        props["email"] = customer.email
    if first:
        props["firstname"] = first
    if last:
        props["lastname"] = last
    if lifecycle.stage:
        props["lifecyclestage"] = lifecycle.stage
    return props
