"""The ``seller_ticket`` subscriber of billing's events: marketplace sellers' tickets.

- A dispute on a marketplace order (a payment to a seller's connected account, see
  billing/orders.py) opens one ticket in the ``seller_disputes`` queue, naming the order,
  the buyer and the seller; its close solves it. The buyers' own dispute rule
  (support/rules.py) leaves these orders to this queue, so a dispute has one ticket.
- ``payout.failed`` on a connected account (the event envelope's ``account``, from a
  Connect endpoint) opens one ticket per payout in the ``sellers`` queue.

One ticket per situation (``dispute:<id>``, ``payout_failed:<id>``, unique keys): replays
and redeliveries find the same ticket. A dispute closed before its opening event was
processed is solved as it is opened, as in Stripe's order.
"""

from __future__ import annotations

from typing import Any

from audit.services import mask_secrets
from billing import events
from billing.events import BillingEvent, OrderFacts
from config import problems
from config.money import format_money
from customers.models import Customer
from support import rules, services
from support.content import ticket_body

SUBSCRIBER = "seller_ticket"
DISPUTE_OPENED = ("charge.dispute.created",)
DISPUTE_CLOSED = ("charge.dispute.closed",)
PAYOUT_FAILED = ("payout.failed",)
EVENT_TYPES = (*DISPUTE_OPENED, *DISPUTE_CLOSED, *PAYOUT_FAILED)


def _customer(customer_id: Any) -> Customer | None:
    return Customer.objects.filter(pk=customer_id).first() if customer_id else None


def _who(customer: Customer | None, fallback: str) -> str:
    return mask_secrets(customer.display_name) if customer is not None else fallback


def _order_lines(order: OrderFacts, buyer: Customer | None, seller: Customer | None) -> str:
    money = order.currency
    return "\n".join(
        [
            f"Order: #{order.order_id} ({order.state})",
            f"Buyer: {_who(buyer, 'no customer record')}"
            + (f" [{buyer.pk}]" if buyer is not None else ""),
            f"Seller: {_who(seller, 'no customer linked to this account')}"
            + (f" [{seller.pk}]" if seller is not None else "")
            + f", connected account {order.seller_account_id}",
            f"Order amount: {format_money(order.amount, money)}; application fee "
            f"{format_money(order.application_fee_amount, money)}; refunded "
            f"{format_money(order.amount_refunded, money)}",
            f"Payment: {order.payment_intent_id or '-'} / {order.charge_id or '-'}",
        ]
    )


def _dispute(event: BillingEvent) -> str:
    obj = event.object
    dispute_id = str(obj.get("id") or "")
    order = events.order_of(event)
    if not dispute_id or order is None or not order.seller_account_id:
        return "nothing to do: not a dispute on a marketplace order"
    key = f"dispute:{dispute_id}"
    if event.type in DISPUTE_CLOSED:
        solved = services.ticket_solve(
            situation_key=key,
            note=f"Dispute {dispute_id} closed: {obj.get('status', '')}.",
            cause=event.cause,
        )
        return f"solved ticket #{solved.pk}" if solved else f"no open ticket {key}"
    buyer = _customer(order.buyer_customer_id)
    seller = _customer(order.seller_customer_id)
    # Filed under the buyer (the chargeback is theirs), else the seller; never under a
    # customer whose data was erased on request.
    filed_under = next((c for c in (buyer, seller) if c is not None and c.erased_at is None), None)
    if filed_under is None:
        problems.report(
            key=f"seller_dispute_unfiled:{dispute_id}",
            title=f"Dispute {dispute_id} on order #{order.order_id} has no customer to file",
            detail=f"Neither the buyer nor the seller ({order.seller_account_id}) has a "
            "customer record: link the seller's connected account to a customer.",
        )
        return "nothing filed: neither buyer nor seller has a customer record"
    rule = rules.SELLER_DISPUTE
    ticket, created = services.ticket_open(
        customer=filed_under,
        rule=rule,
        situation_key=key,
        subject=rule.subject.format(
            order=order.order_id,
            seller=_who(seller, order.seller_account_id),
            charge=order.charge_id or events.charge_id_of(obj),
        ),
        body=ticket_body(
            filed_under,
            obj=obj,
            livemode=event.livemode,
            summary=(
                f"Dispute {dispute_id} ({obj.get('reason') or 'no reason given'}, "
                f"{obj.get('status') or '-'}) on a marketplace order.\n"
                + _order_lines(order, buyer, seller)
            ),
            related=tuple(i for i in (order.payment_intent_id, order.seller_account_id) if i),
        ),
        cause=event.cause,
    )
    note = f"{'opened' if created else 'already open'} ticket #{ticket.pk} ({rule.queue})"
    over = rules.dispute_over(event, key)
    if over and services.ticket_solve(situation_key=key, note=over, cause=event.cause):
        note += f"; solved at once: {over}"
    return note


def _payout_failed(event: BillingEvent) -> str:
    obj = event.object
    payout_id = str(obj.get("id") or "")
    if not event.account:
        return "nothing to do: the platform's own payout, not a seller's"
    seller = Customer.objects.filter(stripe_account_id=event.account).first()
    if seller is None or seller.erased_at is not None:  # an erased seller gets no new ticket
        problems.report(
            key=f"seller_unknown:{event.account}",
            title=f"Payout {payout_id} failed for connected account {event.account}",
            detail="No customer is linked to this connected account, so no seller ticket "
            "was opened: link it (Customers → Stripe connected account id).",
        )
        return f"no seller linked to {event.account}: alerted"
    rule = rules.SELLER_PAYOUT_FAILED
    amount = obj.get("amount")
    ticket, created = services.ticket_open(
        customer=seller,
        rule=rule,
        situation_key=f"payout_failed:{payout_id}",
        subject=rule.subject.format(seller=_who(seller, event.account), payout=payout_id),
        body=ticket_body(
            seller,
            obj=obj,
            livemode=event.livemode,
            summary=(
                f"Payout {payout_id} of "
                f"{format_money(amount, str(obj.get('currency') or '')) if isinstance(amount, int) else '-'}"
                f" to the seller's bank failed: {obj.get('failure_code') or 'no code'} "
                f"({obj.get('failure_message') or 'no message'}).\n"
                f"Seller: {_who(seller, '-')} [{seller.pk}], connected account {event.account}"
            ),
            related=(event.account,),
        ),
        cause=event.cause,
    )
    return f"{'opened' if created else 'already open'} ticket #{ticket.pk} ({rule.queue})"


def seller_ticket(event: BillingEvent) -> str:
    if event.type in PAYOUT_FAILED:
        return _payout_failed(event)
    return _dispute(event)
