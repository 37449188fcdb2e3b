"""``{% needs_you as needs %}``: the "needs you" strip's counts for the current user."""

from __future__ import annotations

from typing import Any

from django import template

from console.needs import Need, needs_you

register = template.Library()


@register.simple_tag(takes_context=True)
def needs_you_for(context: Any) -> list[Need]:
    request = context.get("request")
    return needs_you(request.user) if request is not None else []
