"""The ``order_webhooks`` subscriber: ``order.paid`` and ``order.refunded`` to the product.

Billing decides an order's state (billing/orders.py) and publishes it as
``billing.events.OrderFacts``. This subscriber reads the order as it stands now, never the
event's own object, so every delivery order, duplicate and replay ends in the same
messages: one ``order.paid`` per order once it was paid, and one ``order.refunded`` per
refunded total the order reached (a refund only ever adds to it). The dedupe keys make a
retried or replayed run write nothing twice.
"""

from __future__ import annotations

from typing import Any

from billing.events import BillingEvent, OrderFacts, order_of
from customers.models import Customer
from provisioning import webhooks

SUBSCRIBER = "order_webhooks"
# The events that can pay or refund an order (billing/orders.py projects them).
EVENT_TYPES = (
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
    "payment_intent.succeeded",
    "charge.succeeded",
    "charge.refunded",
    "refund.created",
    "refund.updated",
    "charge.refund.updated",
)
# An order in any of these states was paid (a dispute or a refund comes after payment).
PAID_STATES = {"paid", "partially_refunded", "refunded", "disputed", "won", "lost"}


def order_data(order: OrderFacts) -> dict[str, Any]:
    """The order as the product sees it (openapi.json ``WebhookOrder``)."""
    return {
        "order_id": str(order.order_id),
        "customer_id": str(order.buyer_customer_id) if order.buyer_customer_id else None,
        "seller_customer_id": str(order.seller_customer_id) if order.seller_customer_id else None,
        "amount": order.amount,
        "amount_refunded": order.amount_refunded,
        "currency": order.currency,
        "state": order.state,
        "stripe_payment_intent_id": order.payment_intent_id or None,
        "stripe_checkout_session_id": order.checkout_session_id or None,
        "stripe_charge_id": order.charge_id or None,
    }


def order_webhooks(event: BillingEvent) -> str:
    order = order_of(event)
    if order is None:
        return "nothing to do: not a one-time order"
    if order.state not in PAID_STATES:
        return f"nothing to send: order {order.order_id} is {order.state}"
    buyer = (
        Customer.objects.filter(pk=order.buyer_customer_id).first()
        if order.buyer_customer_id
        else None
    )
    data = order_data(order)
    sent = webhooks.product_event_send(
        webhooks.ORDER_PAID,
        data,
        cause=event.cause,
        dedupe_key=f"order.paid:{order.order_id}",
        customer=buyer,
    )
    notes = [f"order.paid queued for order {order.order_id}"] if sent else []
    if order.amount_refunded > 0:
        sent = webhooks.product_event_send(
            webhooks.ORDER_REFUNDED,
            data,
            cause=event.cause,
            dedupe_key=f"order.refunded:{order.order_id}:{order.amount_refunded}",
            customer=buyer,
        )
        if sent:
            notes.append(f"order.refunded ({order.amount_refunded}) queued")
    return "; ".join(notes) or f"order {order.order_id}: already sent"
