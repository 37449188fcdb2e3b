"""Support writes: open and solve tickets (each mirrored to the helpdesk via the outbox).

Called by the ``helpdesk_ticket`` subscriber of billing's events (``actor=None``, inside
its run's transaction), by the outbox's dead-row signal and by staff from the console (``actor=`` the agent; permission is the
queue's object permission, checked here).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from audit import codes
from audit.services import audit_record
from customers.models import Customer
from delivery.outbox import outbox_write
from support import rules
from support.content import ticket_body
from support.models import SupportQueue, Ticket, TicketStatus
from support.permissions import WORK_QUEUE, can_work_ticket

CHANNEL = "helpdesk"
TICKET_OPEN = "ticket_open"
TICKET_SOLVE = "ticket_solve"
USER_ERASE = "user_erase"
ERASED_SUBJECT = "Ticket about a customer whose data was erased"
ERASED_BODY = "[erased on the customer's request]"


def queue_get(slug: str) -> SupportQueue:
    """The queue for ``slug``; a queue deleted by hand (or a flushed test database) is
    created again with its grants from the rules table, never left to fail a handler."""
    queue = SupportQueue.objects.filter(slug=slug).first()
    if queue is not None:
        return queue
    name, description, role_names = rules.QUEUES[slug]
    queue, _ = SupportQueue.objects.get_or_create(
        slug=slug, defaults={"name": name, "description": description}
    )
    for group in Group.objects.filter(name__in=role_names):
        assign_perm(WORK_QUEUE, group, queue)
    return queue


def ticket_open(
    *,
    customer: Customer,
    rule: rules.TicketRule,
    situation_key: str,
    subject: str,
    body: str,
    cause: str = "",
) -> tuple[Ticket, bool]:
    """The ticket for ``situation_key``, opened (and queued for the helpdesk) the first
    time only. Returns (ticket, created)."""
    with transaction.atomic():
        queue = queue_get(rule.queue)
        ticket, created = Ticket.objects.get_or_create(
            situation_key=situation_key[:255],
            defaults={
                "customer": customer,
                "queue": queue,
                "subject": subject[:200],
                "body": body,
                "priority": rule.priority,
            },
        )
        if created:
            outbox_write(
                channel=CHANNEL,
                kind=TICKET_OPEN,
                customer=customer,
                cause=cause,
                dedupe_key=f"helpdesk:{TICKET_OPEN}:{ticket.situation_key}",
                payload={"ticket_id": ticket.pk, "queue": queue.slug},
            )
    return ticket, created


def ticket_solve(
    *, situation_key: str, note: str, actor: Any | None = None, cause: str = ""
) -> Ticket | None:
    """Solve the ticket with a note (mirrored to the helpdesk). None when there is no such
    ticket or it is already solved. Staff need the object permission on its queue."""
    with transaction.atomic():
        ticket = (
            Ticket.objects.select_for_update()
            .select_related("queue")
            .filter(situation_key=situation_key)
            .first()
        )
        if ticket is None or ticket.status == TicketStatus.SOLVED:
            return None
        if actor is not None and not can_work_ticket(actor, ticket):
            raise PermissionDenied("You may not work tickets of this queue.")
        before = ticket.status
        ticket.status = TicketStatus.SOLVED
        ticket.solved_at = timezone.now()
        ticket.save(update_fields=["status", "solved_at", "updated_at"])
        outbox_write(
            channel=CHANNEL,
            kind=TICKET_SOLVE,
            customer=ticket.customer,
            cause=cause,
            dedupe_key=f"helpdesk:{TICKET_SOLVE}:{ticket.pk}",
            payload={"ticket_id": ticket.pk, "note": note[:2000]},
        )
        if actor is not None:
            audit_record(
                action=codes.SUPPORT_TICKET_SOLVED,
                actor=actor,
                target=ticket,
                data={
                    "queue": ticket.queue.slug,
                    "before": before,
                    "after": TicketStatus.SOLVED,
                    "reason": note[:300],
                },
            )
    return ticket


def tickets_solve(*, actor: Any, ticket_pks: list[int], note: str) -> int:
    """Console action: solve the selected tickets the agent may work."""
    keys = Ticket.objects.filter(pk__in=ticket_pks).values_list("situation_key", flat=True)
    return sum(1 for key in keys if ticket_solve(situation_key=key, note=note, actor=actor))


def review_ticket_open(
    *, customer_id: Any, reason: str, summary: str, cause: str = ""
) -> tuple[Ticket, bool]:
    """A ticket in the human-review queue: the state is unknown or conflicting after
    retries. One per customer and reason."""
    customer = Customer.objects.get(pk=customer_id)
    rule = rules.NEEDS_REVIEW
    return ticket_open(
        customer=customer,
        rule=rule,
        situation_key=f"review:{reason}:{customer.pk}",
        subject=rule.subject.format(customer=customer.display_name),
        body=ticket_body(customer, summary=summary),
        cause=cause,
    )


def tickets_erase(sender: Any, *, customer_id: Any, helpdesk_user_id: str, **kwargs: Any) -> None:
    """Receiver of ``customers.signals.customer_erasing``: the customer's tickets keep
    their queue, status and times but lose subject and body, and the helpdesk is asked to
    delete the user for good (Zendesk: soft delete, then permanent deletion) through the
    outbox. The row names the user by id only and carries no customer."""
    Ticket.objects.filter(customer_id=customer_id).update(
        subject=ERASED_SUBJECT, body=ERASED_BODY, updated_at=timezone.now()
    )
    if helpdesk_user_id:
        outbox_write(
            channel=CHANNEL,
            kind=USER_ERASE,
            dedupe_key=f"helpdesk:erase:{customer_id}",
            cause=f"erasure:{customer_id}",
            payload={"user_id": helpdesk_user_id},
        )
