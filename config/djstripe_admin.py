"""dj-stripe's mirror of Stripe objects, read-only in the console.

dj-stripe's admin adds bulk actions (re-sync, *cancel subscription*) and a route of its
own, ``<model>/action/<action_name>/<model_name>/``, that runs whichever model method the
URL names on the selected rows. That route asks only for ``is_staff``: any support agent
could cancel a subscription in Stripe with one crafted POST, with no role check, no
idempotency key and no audit entry. Changes to Stripe objects go through the finance
actions (billing/refunds.py, billing/subscriptions.py) only, so here every dj-stripe
admin keeps its list and detail pages and loses its actions, that route, and add,
change and delete.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import URLPattern


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
            f"ReadOnly{type(model_admin).__name__}", (_ReadOnly, type(model_admin)), {}
        )
        site.unregister(model)
        site.register(model, read_only)
        count += 1
    return count
