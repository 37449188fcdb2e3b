"""``{% customer_finance customer as finance %}``: the finance panel's data for the
current user (billing.selectors.customer_finance)."""

from __future__ import annotations

from typing import Any

from django import template

from billing.selectors import customer_finance as _customer_finance
from config.money import format_money

register = template.Library()


@register.simple_tag(takes_context=True)
def customer_finance(context: dict[str, Any], customer: Any) -> dict[str, Any]:
    request = context.get("request")
    return _customer_finance(customer=customer, user=getattr(request, "user", None))


@register.filter
def request_amount(refund_request: Any) -> str:
    """'150.00 USD' for a refund request."""
    return format_money(refund_request.amount, refund_request.currency)


@register.filter
def money(amount: Any, currency: str) -> str:
    """'150.00 USD' for an amount in the currency's smallest unit (config/money.py)."""
    return format_money(amount, currency)
