"""CRM sync: the ``crm_update`` subscriber of billing's events writes outbox rows;
``deliver_crm`` (the ``crm`` channel) sends them through the CRM adapter.

One ``contact_sync`` row per event and customer (dedupe ``crm:contact:<customer>:<event>``,
so a retried or replayed handler run writes nothing new), coalesced per customer
(``crm:contact:<customer>``): while the CRM is down, fifty updates of one contact become
one request with the newest state when it is back.

A row carries the contact's full properties (sent when the contact is created) and
whether the email changed in Stripe: an update sends only the properties Switchboard
owns (crm_sync/lifecycle.py), plus the email when it changed. If another contact owns the
new email (HubSpot's 409), the customer is marked for review with the reason and the rest
of the update is delivered without the email: a person decides which contact keeps it,
nothing dies.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import IntegrityError, transaction

from billing.events import BillingEvent, charge_id_of
from config.money import format_money
from crm_sync.adapters import ContactConflict, EmailTaken, get_crm
from crm_sync.lifecycle import contact_properties, update_properties
from customers.models import Customer, MatchState
from delivery.errors import PermanentError, RetryableError
from delivery.models import OutboxMessage, OutboxState
from delivery.outbox import WAITING, outbox_write
from delivery.senders import Delivered

logger = logging.getLogger(__name__)

CHANNEL = "crm"
SUBSCRIBER = "crm_update"
CONTACT_SYNC = "contact_sync"
CONTACT_NOTE = "contact_note"
CONTACT_ERASE = "contact_erase"

# The Stripe events after which the contact's state is sent again.
EVENT_TYPES = (
    "checkout.session.completed",
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice_payment.paid",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
)


def contact_coalesce_key(customer: Customer) -> str:
    return f"crm:contact:{customer.pk}"


def crm_update(event: BillingEvent) -> str:
    """Subscriber ``crm_update``: queue the contact's new state (and a note for disputes)."""
    customer = Customer.objects.filter(pk=event.customer_id).first() if event.customer_id else None
    if customer is None:
        return "nothing to do: no canonical customer for this event"
    if customer.erased_at is not None:
        return "nothing to do: the customer's data was erased on request"
    if customer.match_state == MatchState.CONFLICT and not customer.crm_contact_id:
        return "skipped: customer is marked for review (conflicting CRM contacts)"
    properties = contact_properties(customer)
    # A newer row supersedes the waiting ones of this contact: it inherits their email
    # change, or the new email would never be sent.
    email_changed = (
        "email" in event.changes
        or OutboxMessage.objects.filter(
            coalesce_key=contact_coalesce_key(customer),
            state__in=[*WAITING, OutboxState.DELIVERING],
            payload__email_changed=True,
        ).exists()
    )
    row, created = outbox_write(
        channel=CHANNEL,
        kind=CONTACT_SYNC,
        customer=customer,
        cause=event.cause,
        dedupe_key=f"crm:contact:{customer.pk}:{event.event_id}",
        coalesce_key=contact_coalesce_key(customer),
        payload={"properties": properties, "email_changed": email_changed},
    )
    note = ""
    if event.type == "charge.dispute.created":
        obj = event.object
        amount = format_money(obj.get("amount") or 0, str(obj.get("currency") or ""))
        outbox_write(
            channel=CHANNEL,
            kind=CONTACT_NOTE,
            customer=customer,
            cause=event.cause,
            dedupe_key=f"crm:note:dispute:{obj.get('id')}",
            payload={
                "body": f"Dispute {obj.get('id')} opened on charge "
                f"{charge_id_of(obj)}: {obj.get('reason') or 'no reason'}, "
                f"{amount}."
            },
        )
        note = " + dispute note"
    state = "queued" if created else "already queued"
    return (
        f"CRM update {state} (#{row.pk}): stage {properties.get('lifecyclestage', 'unchanged')}, "
        f"tags [{properties['switchboard_tags']}]{note}"
    )


def _mark_conflict(customer_id: object, reason: str) -> None:
    Customer.objects.filter(pk=customer_id).update(
        match_state=MatchState.CONFLICT, review_reason=reason[:300]
    )


def _store_contact_id(customer: Customer, contact_id: str) -> None:
    """Link the contact to the customer the moment we know it, so a retry or replay
    updates it instead of creating another. The id is unique across customers: a contact
    already linked to someone else is a conflict for a person to resolve."""
    try:
        with transaction.atomic():
            Customer.objects.filter(pk=customer.pk).update(crm_contact_id=contact_id)
    except IntegrityError:
        reason = f"CRM contact {contact_id} is already linked to another customer"
        _mark_conflict(customer.pk, reason)
        raise PermanentError(
            reason, user_message="the CRM contact belongs to another customer"
        ) from None


def contact_erase_request(
    sender: Any, *, customer_id: Any, crm_contact_id: str, **kwargs: Any
) -> None:
    """Receiver of ``customers.signals.customer_erasing``: ask the CRM to delete the
    contact for good (HubSpot's GDPR delete), through the outbox. The row names the
    contact by its id only and carries no customer, so nothing personal waits in it."""
    if crm_contact_id:
        outbox_write(
            channel=CHANNEL,
            kind=CONTACT_ERASE,
            dedupe_key=f"crm:erase:{customer_id}",
            cause=f"erasure:{customer_id}",
            payload={"contact_id": crm_contact_id},
        )


def deliver_crm(message: OutboxMessage) -> Delivered:
    crm = get_crm()
    if message.kind == CONTACT_ERASE:
        contact_id = message.payload["contact_id"]
        crm.contact_erase(contact_id=contact_id)
        return Delivered(f"{crm.name}: contact {contact_id} permanently deleted")
    customer = Customer.objects.get(pk=message.customer_id)
    if message.kind == CONTACT_NOTE:
        if not customer.crm_contact_id and crm.name != "local log":
            raise RetryableError("the customer has no CRM contact yet; the note waits for it")
        note_id = crm.note_add(
            contact_id=customer.crm_contact_id or "", body=message.payload["body"]
        )
        return Delivered(f"{crm.name}: note added", external_id=note_id)
    properties = message.payload["properties"]
    update = update_properties(properties, email_changed=bool(message.payload.get("email_changed")))
    note = ""
    try:
        try:
            result = crm.contact_upsert(
                contact_id=customer.crm_contact_id,
                stable_key=str(customer.pk),
                email=customer.email,
                properties=properties,
                update=update,
            )
        except EmailTaken as exc:
            _mark_conflict(
                customer.pk,
                f"CRM: the new email {exc.email} belongs to contact {exc.owner_id}; "
                "the contact kept its old email, pick which one keeps it",
            )
            note = f"; email not changed: contact {exc.owner_id} has it (needs review)"
            update.pop("email", None)
            result = crm.contact_upsert(
                contact_id=customer.crm_contact_id,
                stable_key=str(customer.pk),
                email=customer.email,
                properties=properties,
                update=update,
            )
    except ContactConflict as exc:
        _mark_conflict(customer.pk, f"CRM: {exc.developer_message}; not merged, pick one")
        raise
    if result.contact_id and result.contact_id != customer.crm_contact_id:
        _store_contact_id(customer, result.contact_id)
    what = "created" if result.created else f"updated (matched by {result.matched_by})"
    return Delivered(
        f"{crm.name}: contact {result.contact_id or '-'} {what}{note}",
        external_id=result.contact_id,
    )
