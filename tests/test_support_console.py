"""Agents work their queues in the console: solving goes through the service (mirrored to
the helpdesk, audited) and only reaches tickets of queues the person may work."""

from __future__ import annotations

import pytest
from django.urls import reverse

from audit.models import AuditEntry
from delivery.models import OutboxMessage
from support.models import TicketStatus
from support.rules import TICKET_RULES
from support.services import ticket_open
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def open_ticket(queue: str, key: str):
    rule = next(r for r in TICKET_RULES if r.queue == queue)
    ticket, _ = ticket_open(
        customer=CustomerFactory(),
        rule=rule,
        situation_key=key,
        subject=f"{queue} ticket",
        body="-",
    )
    return ticket


def test_agent_solves_a_billing_ticket_audited_and_mirrored(client, support_agent):
    ticket = open_ticket("billing", "payment_failed:in_console")
    client.force_login(support_agent)
    response = client.post(
        reverse("admin:support_ticket_changelist"),
        {"action": "solve_tickets", "_selected_action": [ticket.pk]},
    )
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.SOLVED
    entry = AuditEntry.objects.get(action="support.ticket.solved")
    assert (entry.actor, entry.target_id, entry.data["after"]) == (
        support_agent,
        str(ticket.pk),
        "solved",
    )
    assert OutboxMessage.objects.filter(channel="helpdesk", kind="ticket_solve").count() == 1


def test_agent_cannot_solve_a_dispute_ticket_even_by_posting_its_id(client, support_agent):
    ticket = open_ticket("disputes", "dispute:dp_console")
    client.force_login(support_agent)
    client.post(
        reverse("admin:support_ticket_changelist"),
        {"action": "solve_tickets", "_selected_action": [ticket.pk]},
    )
    ticket.refresh_from_db()
    assert ticket.status == TicketStatus.OPEN
    assert not AuditEntry.objects.filter(action="support.ticket.solved").exists()


def test_service_refuses_a_staff_member_without_the_queue(support_agent):
    from django.core.exceptions import PermissionDenied

    from support.services import ticket_solve

    open_ticket("disputes", "dispute:dp_service")
    with pytest.raises(PermissionDenied):
        ticket_solve(situation_key="dispute:dp_service", note="x", actor=support_agent)
