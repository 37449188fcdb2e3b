"""dj-stripe's mirror of Stripe objects, read-only in the console.

dj-stripe's admin adds bulk actions (re-sync, *cancel subscription*) and a route of its
own, ``<model>/action/<action_name>/<model_name>/``, that runs whichever model method the
URL names on the selected rows. That route asks only for ``is_staff``: any support agent
could cancel a subscription in Stripe with one crafted POST, with no role check, no
idempotency key and no audit entry. Changes to Stripe objects go through the finance
actions (billing/refunds.py, billing/subscriptions.py) only, so here every dj-stripe
admin keeps its list and detail pages and loses its actions, that route, and add,
change and delete.

dj-stripe 2.11 reads some fields where API versions before 2025-03-31.basil had them: its
``Invoice.paid`` is a required key Stripe removed (the invoice list and page answered
500), its ``Subscription.current_period_end`` is empty since the period moved to the
items. The pipeline's mirror fills those in (billing/adapters/djstripe_mirror.py), but
dj-stripe also stores objects it fetched itself. So every model property these pages
show is read here through billing/shapes.py where it moved, and a property dj-stripe
cannot read for a row shows as empty instead of failing the page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import URLPattern

from billing import shapes

logger = logging.getLogger(__name__)


# (model name, property) -> how to read it from the stored object in any API version.
MOVED: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
    ("invoice", "paid"): shapes.invoice_is_paid,
    ("subscription", "current_period_start"): lambda d: shapes.timestamp(
        shapes.subscription_period(d)[0]
    ),
    ("subscription", "current_period_end"): lambda d: shapes.timestamp(
        shapes.subscription_period(d)[1]
    ),
}


def _column(model: type, name: str) -> Callable[[Any, Any], Any]:
    """An admin display of the model property ``name``: where it moved, from its new
    place; a value dj-stripe cannot read for this row is shown empty, never a 500."""
    moved = MOVED.get((model._meta.model_name, name))

    def display(self: Any, obj: Any) -> Any:
        if moved is not None:
            return moved(obj.stripe_data or {})
        try:
            return getattr(obj, name)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            logger.info("dj-stripe %s.%s unreadable for %s: %r", model.__name__, name, obj.pk, exc)
            return None

    display.__name__ = name
    display.short_description = name.replace("_", " ")  # type: ignore[attr-defined]
    if (model._meta.model_name, name) == ("invoice", "paid"):
        display.boolean = True  # type: ignore[attr-defined]
    return display


def _property_columns(model: type, model_admin: admin.ModelAdmin) -> dict[str, Any]:
    """Admin methods for every property of ``model``: the admin looks a name up on the
    ModelAdmin before the model (django.contrib.admin.utils.lookup_field)."""
    return {
        name: _column(model, name)
        for name in dir(model)
        if isinstance(getattr(model, name, None), property)
        and name != "pk"
        and not hasattr(type(model_admin), name)
    }


class _ReadOnly:
    """Mixed in before dj-stripe's own ModelAdmin class."""

    actions = None

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        return {}

    def get_urls(self) -> list[URLPattern]:
        # ModelAdmin's own routes only: not dj-stripe's custom-action route.
        return admin.ModelAdmin.get_urls(self)  # type: ignore[arg-type]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def install(site: admin.AdminSite = admin.site) -> int:
    """Re-register every dj-stripe model admin read-only; returns how many."""
    count = 0
    for model, model_admin in list(site._registry.items()):
        if model._meta.app_label != "djstripe" or isinstance(model_admin, _ReadOnly):
            continue
        read_only = type(
            f"ReadOnly{type(model_admin).__name__}",
            (_ReadOnly, type(model_admin)),
            _property_columns(model, model_admin),
        )
        site.unregister(model)
        site.register(model, read_only)
        count += 1
    return count
