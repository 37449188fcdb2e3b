"""The ``helpdesk`` channel's sender: mirror a Ticket to the helpdesk (open, or solve with
a note)."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from customers.models import Customer
from delivery.errors import RetryableError
from delivery.models import OutboxMessage
from delivery.senders import Delivered
from support.adapters import get_helpdesk
from support.models import Ticket
from support.services import TICKET_OPEN, USER_ERASE

logger = logging.getLogger(__name__)


def _store_requester(customer: Customer, user_id: str) -> None:
    if not user_id or customer.helpdesk_user_id == user_id:
        return
    try:
        with transaction.atomic():
            Customer.objects.filter(pk=customer.pk).update(helpdesk_user_id=user_id)
    except IntegrityError:
        logger.warning("helpdesk user %s is linked to another customer; not relinked", user_id)


def deliver_helpdesk(message: OutboxMessage) -> Delivered:
    helpdesk = get_helpdesk()
    if message.kind == USER_ERASE:
        user_id = message.payload["user_id"]
        helpdesk.user_erase(user_id=user_id)
        return Delivered(f"{helpdesk.name}: user {user_id} permanently deleted")
    ticket = Ticket.objects.select_related("customer", "queue").get(pk=message.payload["ticket_id"])
    if message.kind == TICKET_OPEN:
        if ticket.external_id:
            return Delivered(
                f"{helpdesk.name}: ticket {ticket.external_id} already exists",
                external_id=ticket.external_id,
            )
        customer = ticket.customer
        # The requester is created (by our external id) once; later tickets reuse the id.
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
    helpdesk.ticket_solve(ticket_id=external_id, note=message.payload.get("note", ""))
    return Delivered(f"{helpdesk.name}: ticket {external_id} solved", external_id=external_id)
