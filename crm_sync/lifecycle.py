"""Internal billing status -> CRM lifecycle stage and tags: the one table (README has it).

``stage`` None leaves the contact's stage as it is: a churned or disputed customer was
still a customer. Tags are written as one multi-value property (``switchboard_tags``)
that replaces the previous value, so tags of the old status are cleared when the status
changes (recovered: ``payment_failed`` goes, ``paying`` comes back).

**Backward moves.** HubSpot lifecycle stages only move forward: a stage earlier in the
order than the contact's is ignored without an error. When the table says a contact must
go back (a churned customer, still at ``customer``, starts a new trial: ``opportunity``),
the adapter clears ``lifecyclestage`` first and then sets the stage (two more requests,
only on such a move). It only does so from a stage Switchboard itself sets
(``SWITCHBOARD_STAGES``): a stage a person chose in HubSpot (a sales-qualified lead, an
evangelist) is never pulled back.

**What a PATCH sends.** Only the properties Switchboard owns (``OWNED_PROPERTIES``):
names and email belong to the people working the CRM once the contact exists, so they
are sent on create only, and ``email`` on an update only when it changed in Stripe.
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
STAGE_PROPERTY = "lifecyclestage"
# What an update of an existing contact may change.
OWNED_PROPERTIES = (
    STABLE_KEY_PROPERTY,
    "switchboard_status",
    "switchboard_plan",
    TAGS_PROPERTY,
    STAGE_PROPERTY,
)
# How each custom property is created in HubSpot (the pause alert names the missing one).
PROPERTY_SETUP = {
    STABLE_KEY_PROPERTY: "single-line text",
    "switchboard_status": "single-line text",
    "switchboard_plan": "single-line text",
    TAGS_PROPERTY: "multiple checkboxes",
}
# HubSpot's default stages in their only-forward order, and the ones this table sets.
STAGE_ORDER = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
SWITCHBOARD_STAGES = frozenset(
    lifecycle.stage for lifecycle in LIFECYCLE.values() if lifecycle.stage
)
ALL_TAGS = tuple(dict.fromkeys(tag for lifecycle in LIFECYCLE.values() for tag in lifecycle.tags))


def is_backward(current: str | None, target: str | None) -> bool:
    """True when moving a contact at ``current`` to ``target`` goes back in HubSpot's
    order, from a stage Switchboard set (so clearing first is ours to do)."""
    if not current or not target or current == target or current not in SWITCHBOARD_STAGES:
        return False
    if current not in STAGE_ORDER or target not in STAGE_ORDER:
        return False
    return STAGE_ORDER.index(target) < STAGE_ORDER.index(current)


def update_properties(properties: dict[str, str], *, email_changed: bool) -> dict[str, str]:
    """The part of ``contact_properties`` an update sends: the owned properties, plus the
    email when it changed in Stripe."""
    update = {k: v for k, v in properties.items() if k in OWNED_PROPERTIES}
    if email_changed and properties.get("email"):
        update["email"] = properties["email"]
    return update


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
