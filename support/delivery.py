"""The ``helpdesk`` channel's sender: mirror a Ticket to the helpdesk (open, or solve with
a note) and keep the requester's email in step with Stripe.

- A ticket is opened in its queue's helpdesk group (``ZENDESK_GROUP_IDS``). A private
  queue (``PRIVATE_QUEUES``: disputes, finance only in the console) without a group is
  refused — a dead row with an alert saying which setting is missing — rather than
  opened where every agent of the helpdesk sees it.
- ``helpdesk_requester`` (a subscriber of billing's ``customer.updated``) writes a
  ``requester_email`` row when the projection changed the customer's email and the
  customer already has a helpdesk user; rows are coalesced per customer, so only the
  newest address is sent.
"""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from billing.events import BillingEvent
from customers.models import Customer
from delivery.errors import PermanentError, RetryableError
from delivery.models import OutboxMessage
from delivery.outbox import outbox_write
from delivery.senders import Delivered
from support.adapters import get_helpdesk
from support.models import Ticket
from support.rules import DISPUTES, SELLER_DISPUTES
from support.services import CHANNEL, TICKET_OPEN, USER_ERASE

logger = logging.getLogger(__name__)

# Queues only some staff may work (support/permissions.py): never opened at the helpdesk
# outside a group.
PRIVATE_QUEUES = frozenset({DISPUTES, SELLER_DISPUTES})
REQUESTER_SUBSCRIBER = "helpdesk_requester"
REQUESTER_EVENT_TYPES = ("customer.updated",)
REQUESTER_EMAIL = "requester_email"


def _store_requester(customer: Customer, user_id: str) -> None:
    if not user_id or customer.helpdesk_user_id == user_id:
        return
    try:
        with transaction.atomic():
            Customer.objects.filter(pk=customer.pk).update(helpdesk_user_id=user_id)
    except IntegrityError:
        logger.warning("helpdesk user %s is linked to another customer; not relinked", user_id)


def helpdesk_requester(event: BillingEvent) -> str:
    """Subscriber ``helpdesk_requester``: queue the customer's new email for the helpdesk."""
    if "email" not in event.changes or not event.customer_id:
        return "nothing to do: the email did not change"
    customer = Customer.objects.filter(pk=event.customer_id).first()
    if customer is None or not customer.helpdesk_user_id or not customer.email:
        return "nothing to do: no helpdesk user yet (created with the current email)"
    row, created = outbox_write(
        channel=CHANNEL,
        kind=REQUESTER_EMAIL,
        customer=customer,
        cause=event.cause,
        dedupe_key=f"helpdesk:{REQUESTER_EMAIL}:{customer.pk}:{event.event_id}",
        coalesce_key=f"helpdesk:requester:{customer.pk}",
        payload={"user_id": customer.helpdesk_user_id, "email": customer.email},
    )
    return f"helpdesk email update {'queued' if created else 'already queued'} (#{row.pk})"


def _deliver_requester_email(message: OutboxMessage) -> Delivered:
    helpdesk = get_helpdesk()
    user_id, email = message.payload["user_id"], message.payload["email"]
    done = helpdesk.user_email_update(user_id=user_id, email=email)
    return Delivered(f"{helpdesk.name}: user {user_id} email: {done}", external_id=user_id)


def deliver_helpdesk(message: OutboxMessage) -> Delivered:
    helpdesk = get_helpdesk()
    if message.kind == USER_ERASE:
        user_id = message.payload["user_id"]
        helpdesk.user_erase(user_id=user_id)
        return Delivered(f"{helpdesk.name}: user {user_id} permanently deleted")
    if message.kind == REQUESTER_EMAIL:
        return _deliver_requester_email(message)
    ticket = Ticket.objects.select_related("customer", "queue").get(pk=message.payload["ticket_id"])
    group_id = helpdesk.group_for(ticket.queue.slug)
    if message.kind == TICKET_OPEN:
        if ticket.external_id:
            return Delivered(
                f"{helpdesk.name}: ticket {ticket.external_id} already exists",
                external_id=ticket.external_id,
            )
        if helpdesk.keeps_tickets and not group_id and ticket.queue.slug in PRIVATE_QUEUES:
            raise PermanentError(
                f"queue {ticket.queue.slug} is private but has no helpdesk group",
                user_message=f"the {ticket.queue.slug} queue is private: set its group in "
                f"ZENDESK_GROUP_IDS ({ticket.queue.slug}=<group id>) so only that group's "
                "agents see these tickets, then retry",
            )
        customer = ticket.customer
        # The requester is found or created (by our external id) once; later tickets
        # reuse the id.
        requester = customer.helpdesk_user_id or ""
        if not requester:
            requester = helpdesk.user_upsert(
                external_id=str(customer.pk),
                email=customer.email,
                name=customer.name or customer.display_name,
            )
            _store_requester(customer, requester)
        external_id = helpdesk.ticket_create(
            external_id=ticket.situation_key,
            requester_id=requester,
            subject=ticket.subject,
            body=ticket.body,
            priority=ticket.priority,
            tags=["switchboard", f"switchboard_queue_{ticket.queue.slug}"],
            check_existing=message.attempts > 1,
            group_id=group_id,
        )
        if external_id:
            Ticket.objects.filter(pk=ticket.pk).update(external_id=external_id)
        return Delivered(
            f"{helpdesk.name}: ticket {external_id or '(local)'} opened", external_id=external_id
        )
    external_id = ticket.external_id or helpdesk.ticket_find(external_id=ticket.situation_key)
    if not external_id:
        if helpdesk.keeps_tickets:
            raise RetryableError(f"ticket {ticket.situation_key} is not at the helpdesk yet")
        return Delivered(f"{helpdesk.name}: solved in the console")
    helpdesk.ticket_solve(
        ticket_id=external_id, note=message.payload.get("note", ""), group_id=group_id
    )
    return Delivered(f"{helpdesk.name}: ticket {external_id} solved", external_id=external_id)
