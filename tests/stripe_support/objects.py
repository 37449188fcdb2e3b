"""Real objects in localstripe for the tests: plans, cards, paying subscribers, and their
snapshots as plain dicts (the shape an event's ``data.object`` has)."""

from __future__ import annotations

from typing import Any

import stripe

CARD_OK = "4242424242424242"


def plan(
    plan_id: str = "plan_pro", amount: int = 2000, interval: str = "month", name: str = "Pro"
) -> Any:
    """localstripe has no Prices: subscriptions are on Plans (with their Product)."""
    return stripe.Plan.create(
        id=plan_id,
        amount=amount,
        currency="usd",
        interval=interval,
        product={"name": name},
        nickname=name,
    )


def card(number: str = CARD_OK) -> Any:
    return stripe.PaymentMethod.create(
        type="card", card={"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"}
    )


def subscriber(email: str, on_plan: Any, *, card_number: str = CARD_OK) -> tuple[Any, Any, Any]:
    """A customer with a default card and a subscription to ``on_plan`` (localstripe
    invoices and charges it at once). Returns (customer, subscription, payment method)."""
    pm = card(card_number)
    customer = stripe.Customer.create(
        email=email,
        name=email.split("@")[0].title(),
        payment_method=pm.id,
        invoice_settings={"default_payment_method": pm.id},
    )
    subscription = stripe.Subscription.create(customer=customer.id, items=[{"plan": on_plan.id}])
    return customer, subscription, pm


def snap(obj: Any, **overrides: Any) -> dict[str, Any]:
    """A localstripe object as a plain dict, with the fields Stripe would have changed
    where localstripe cannot (a renewal that failed, then was paid)."""
    data = obj.to_dict(for_json=True) if hasattr(obj, "to_dict") else dict(obj)
    data.update(overrides)
    return data
