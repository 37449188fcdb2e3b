"""The pipeline's ``helpdesk_ticket`` handler: apply the ticket rules (support/rules.py)
to one Stripe event, inside the handler run's transaction."""

from __future__ import annotations

from billing.models import StripeEvent
from crm_sync.pipeline import customer_for_event
from customers.models import BillingStatus, MatchState
from support import rules, services
from support.content import ticket_body


def helpdesk_ticket(event: StripeEvent) -> str:
    customer = customer_for_event(event)
    if customer is None:
        return "nothing to do: no canonical customer for this event"
    obj = event.data_object
    notes = []
    for rule in rules.rules_for(event.type):
        key = rule.key(obj, customer) if rule.key else None
        if not key:
            continue
        fields = {"customer": customer.display_name, "object_id": obj.get("id", ""),
                  "charge": obj.get("charge", ""), "status": obj.get("status", ""),
                  "plan": customer.plan_name or customer.plan_id or "no plan"}
        if rule.action == rules.OPEN:
            ticket, created = services.ticket_open(
                customer=customer, rule=rule, situation_key=key,
                subject=rule.subject.format(**fields),
                body=ticket_body(customer, obj=obj, event=event), source_event=event)
            notes.append(f"{'opened' if created else 'already open'} ticket #{ticket.pk} "
                         f"({rule.queue})")
        else:
            solved = services.ticket_solve(situation_key=key, note=rule.note.format(**fields),
                                           source_event=event)
            notes.append(f"solved ticket #{solved.pk}" if solved else f"no open ticket {key}")
    if customer.status == BillingStatus.NEEDS_REVIEW or customer.match_state == MatchState.CONFLICT:
        ticket, created = services.review_ticket_open(
            customer_id=customer.pk, reason="state",
            summary=f"State needs a person: {customer.get_match_state_display()}; "
                    f"{customer.review_reason or 'no reason recorded'}", source_event=event)
        notes.append(f"review ticket #{ticket.pk}")
    return "; ".join(notes) or f"nothing to do: no ticket rule applies to this {event.type}"
