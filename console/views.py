"""The console's customer page, its live Stripe panel and the find-anyone search.

All three are read-only pages behind ``admin.site.admin_view`` (staff login, CSRF for
the search form like any admin page) and check ``can_view_console`` again here: every
staff role may read a customer, and what each role sees is decided by the selectors.
Editing identity stays the owners' admin form; finance actions stay billing's pages.
"""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from billing.selectors import customer_finance
from config.parsing import parse_id
from console import search, story, summary
from customers.models import Customer
from customers.permissions import VIEW_BILLING, can_view_console


def _require_console(request: HttpRequest) -> None:
    if not can_view_console(request.user):
        raise PermissionDenied


def customer_page(request: HttpRequest, customer_id: str) -> HttpResponse:
    _require_console(request)
    customer = get_object_or_404(Customer, pk=customer_id)
    kind = request.GET.get("kind") or ""
    page = parse_id(request.GET.get("page")) or 1
    timeline = story.customer_story(customer, request.user, kind=kind, page=page)
    # "What happened last?" is the newest item of all kinds, whatever the filter shows.
    newest = timeline if not kind and timeline.page == 1 else None
    newest = newest or story.customer_story(customer, request.user, page_size=1)
    context = {
        **admin.site.each_context(request),
        "title": customer.display_name,
        "h": summary.customer_summary(customer, request.user),
        "t": timeline,
        "last": newest.items[0] if newest.items else None,
        "customer": customer,
        "query": "",
    }
    return render(request, "console/customer_page.html", context)


def customer_live(request: HttpRequest, customer_id: str) -> HttpResponse:
    """Stripe's live view of the customer (billing's finance panel), with every place it
    disagrees with the projected state flagged. Loaded after the page."""
    _require_console(request)
    if not request.user.has_perm(VIEW_BILLING):
        raise PermissionDenied
    customer = get_object_or_404(Customer, pk=customer_id)
    finance = customer_finance(customer=customer, user=request.user)
    context = {
        "customer": customer,
        "finance": finance,
        "differences": summary.live_differences(customer, finance),
    }
    return render(request, "console/_customer_live.html", context)


def customer_search(request: HttpRequest) -> HttpResponse:
    _require_console(request)
    query = (request.GET.get("q") or "").strip()
    results = list(search.find_customers(query)) if query else []
    if len(results) == 1:
        return HttpResponseRedirect(reverse("console_customer", args=[results[0].pk]))
    context = {
        **admin.site.each_context(request),
        "title": "Find a customer",
        "query": query,
        "results": results,
    }
    return render(request, "console/search.html", context)
