"""The console's read side of marketplace orders: the orders list and one order's page.

An order's state is decided in billing/orders.py; this module only reads it, with what
a person needs next to it: buyer and seller, amounts, the Stripe events of its payment
(the timeline), the refunds asked for and made, and its disputes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet

from billing.models import FinanceAction, Order, OrderState, RefundRequest, StripeEvent
from config.money import format_money
from customers.models import Customer

PAGE_SIZE = 50
TIMELINE_LIMIT = 100


@dataclass(frozen=True)
class OrderFilters:
    state: str = ""
    seller: str = ""  # a seller customer's id or a connected account id

    @classmethod
    def from_query(cls, query: Any) -> OrderFilters:
        state = str(query.get("state") or "")
        return cls(
            state=state if state in OrderState.values else "",
            seller=str(query.get("seller") or "").strip()[:255],
        )

    @property
    def active(self) -> bool:
        return bool(self.state or self.seller)


def orders_list(filters: OrderFilters) -> QuerySet[Order]:
    orders = Order.objects.select_related("buyer", "seller").order_by("-created_at", "-id")
    if filters.state:
        orders = orders.filter(state=filters.state)
    if filters.seller:
        seller = Q(seller_account_id=filters.seller)
        try:
            import uuid

            seller |= Q(seller_id=uuid.UUID(filters.seller))
        except ValueError:
            pass
        orders = orders.filter(seller)
    return orders


def orders_page(filters: OrderFilters, page: int) -> Page:
    return Paginator(orders_list(filters), PAGE_SIZE).get_page(page)


def sellers() -> list[Customer]:
    """Customers linked to a connected account, for the seller filter."""
    return list(
        Customer.objects.exclude(stripe_account_id=None)
        .order_by("name", "email")
        .only("pk", "name", "email", "stripe_account_id", "stripe_customer_id")[:500]
    )


@dataclass
class OrderView:
    order: Order
    amounts: list[tuple[str, str]]
    timeline: list[StripeEvent]
    disputes: list[dict[str, Any]]
    refunds: list[dict[str, Any]]
    requests: list[RefundRequest] = field(default_factory=list)
    actions: list[FinanceAction] = field(default_factory=list)


def order_view(order: Order) -> OrderView:
    money = order.currency
    amounts = [
        ("Amount", format_money(order.amount, money)),
        ("Application fee (platform)", format_money(order.application_fee_amount, money)),
        ("Refunded", format_money(order.amount_refunded, money)),
        ("Still refundable", format_money(order.refundable, money)),
    ]
    if order.is_destination_charge:
        amounts.insert(
            2,
            (
                "To the seller (before refunds)",
                format_money(order.amount - order.application_fee_amount, money),
            ),
        )
    facts = order.facts or {}
    disputes = [
        {
            "id": dispute_id,
            "status": d.get("status", ""),
            "amount": format_money(d["amount"], money),
        }
        for dispute_id, d in sorted((facts.get("disputes") or {}).items())
    ]
    refunds = [
        {"id": refund_id, "status": r.get("status", ""), "amount": format_money(r["amount"], money)}
        for refund_id, r in sorted((facts.get("refunds") or {}).items())
    ]
    object_ids = [
        i
        for i in (
            order.payment_intent_id,
            order.charge_id,
            order.checkout_session_id,
            *(d["id"] for d in disputes),
            *(r["id"] for r in refunds),
        )
        if i
    ]
    timeline = list(
        StripeEvent.objects.filter(object_id__in=object_ids)
        .order_by("created", "id")
        .only("stripe_id", "type", "created", "status", "object_id")[:TIMELINE_LIMIT]
    )
    view = OrderView(order, amounts, timeline, disputes, refunds)
    if order.charge_id:
        view.requests = list(
            RefundRequest.objects.filter(charge_id=order.charge_id).select_related("requested_by")
        )
        view.actions = list(
            FinanceAction.objects.filter(charge_id=order.charge_id).select_related("requested_by")
        )
    return view
