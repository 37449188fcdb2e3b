"""The admin around the console: an index ordered by what people use, human labels.

Installed on the default admin site from config/urls.py (``install(admin.site)``):

- "Everyday work" first: Customers, Find a customer, Refund requests, Tickets and the
  operations dashboard, each shown only to those who may open it (the views check again);
- then our apps in the order people reach for them, and the vendor apps last, relabelled
  ("Django_Rq" -> "Job queues", dj-stripe -> "Stripe mirror (read-only)");
- "View site" opens the console's dashboard instead of a 404.
"""

from __future__ import annotations

from types import MethodType
from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django.urls import reverse

from customers.permissions import REQUEST_REFUND, VIEW_BILLING, can_view_console
from customers.two_factor import pending_step

ORDER = [
    "customers",
    "support",
    "billing",
    "console",
    "delivery",
    "crm_sync",
    "audit",
    "auth",
    "axes",
    "django_rq",
    "djstripe",
    "guardian",
]
LABELS = {
    "djstripe": "Stripe mirror (read-only)",
    "django_rq": "Job queues",
    "axes": "Login lockouts",
    "auth": "Staff and roles",
    "guardian": "Object permissions",
}
EVERYDAY = "everyday"


def _entry(name: str, url: str) -> dict[str, Any]:
    return {
        "name": name,
        "object_name": name.replace(" ", ""),
        "perms": {"view": True},
        "admin_url": url,
        "add_url": None,
        "view_only": True,
    }


def everyday_app(request: HttpRequest, apps: list[dict[str, Any]]) -> dict[str, Any] | None:
    user = request.user
    if not can_view_console(user):
        return None
    models = {m["object_name"]: m for app in apps for m in app["models"]}
    entries: list[dict[str, Any]] = []
    if "Customer" in models:
        entries.append(_entry("Customers", models["Customer"]["admin_url"]))
    entries.append(_entry("Find a customer", reverse("console_search")))
    if user.has_perm(VIEW_BILLING):
        entries.append(_entry("Orders", reverse("console_orders")))
    if user.has_perm(REQUEST_REFUND):
        entries.append(_entry("Refund requests", reverse("billing:refund_requests")))
    if "Ticket" in models:
        entries.append(_entry("Tickets", models["Ticket"]["admin_url"]))
    entries.append(_entry("Operations dashboard", reverse("console_dashboard")))
    return {
        "name": "Everyday work",
        "app_label": EVERYDAY,
        "app_url": reverse("console_dashboard"),
        "has_module_perms": True,
        "models": entries,
    }


def ordered_app_list(
    site: AdminSite, request: HttpRequest, app_label: str | None = None
) -> list[dict[str, Any]]:
    apps = AdminSite.get_app_list(site, request, app_label)
    for app in apps:
        app["name"] = LABELS.get(app["app_label"], app["name"])
    if app_label is not None:
        return apps
    rank = {label: i for i, label in enumerate(ORDER)}
    apps.sort(key=lambda a: (rank.get(a["app_label"], len(ORDER)), a["name"]))
    everyday = everyday_app(request, apps)
    return [everyday, *apps] if everyday else apps


def has_permission(site: AdminSite, request: HttpRequest) -> bool:
    """Django's rule (an active staff user) and no second factor still owed: the admin's
    own lock behind customers.middleware.TwoFactorMiddleware's. Signing out needs none."""
    allowed = AdminSite.has_permission(site, request)
    if not allowed or request.path == reverse("admin:logout", current_app=site.name):
        return allowed
    return pending_step(request.user) is None


def install(site: AdminSite) -> None:
    site.site_url = "/admin/console/"
    # The collapsible sidebar settles after the page has drawn (its state lives in
    # localStorage) and shifted every page sideways (CLS 0.56 on the dashboard); the index
    # lists the same apps, in the order people use them.
    site.enable_nav_sidebar = False
    site.get_app_list = MethodType(ordered_app_list, site)  # type: ignore[method-assign]
    site.has_permission = MethodType(has_permission, site)  # type: ignore[method-assign]
