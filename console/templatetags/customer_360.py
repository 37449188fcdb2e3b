"""Context for the customer page's 360 slots (templates/console/_customer_360_*.html)."""

from __future__ import annotations

from typing import Any

from django import template

from config.parsing import parse_id
from console import selectors
from customers.models import Customer

register = template.Library()


@register.simple_tag(takes_context=True)
def customer_360_header(context: Any, customer: Customer) -> dict[str, Any]:
    return selectors.customer_header(customer, context["request"].user)


@register.simple_tag(takes_context=True)
def customer_360_timeline(context: Any, customer: Customer) -> selectors.Timeline:
    request = context["request"]
    page = parse_id(request.GET.get("page")) or 1  # "²", "-3", "abc": the first page
    return selectors.customer_timeline(customer, request.user, page=page)
