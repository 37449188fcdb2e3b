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

from billing.models import Order, OrderState
from billing.permissions import can_issue_refund, can_request_refund
from billing.selectors import customer_finance
from config.parsing import parse_id
from console import orders, search, story, summary
from customers.models import Customer
from customers.permissions import VIEW_BILLING, can_view_console, can_view_finance_details


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
    found_orders = (
        list(search.find_orders(query)) if query and request.user.has_perm(VIEW_BILLING) else []
    )
    if len(results) == 1 and not found_orders:
        return HttpResponseRedirect(reverse("console_customer", args=[results[0].pk]))
    if len(found_orders) == 1 and not results:
        return HttpResponseRedirect(reverse("console_order", args=[found_orders[0].pk]))
    context = {
        **admin.site.each_context(request),
        "title": "Find a customer",
        "query": query,
        "results": results,
        "orders": found_orders,
    }
    return render(request, "console/search.html", context)


def _require_orders(request: HttpRequest) -> None:
    """Orders show amounts and payment state: every role with billing view may read them
    (all three roles); refunds are asked for on billing's pages, which check again."""
    _require_console(request)
    if not request.user.has_perm(VIEW_BILLING):
        raise PermissionDenied


def orders_list(request: HttpRequest) -> HttpResponse:
    _require_orders(request)
    filters = orders.OrderFilters.from_query(request.GET)
    page = orders.orders_page(filters, parse_id(request.GET.get("page")) or 1)
    context = {
        **admin.site.each_context(request),
        "title": "Orders",
        "page": page,
        "filters": filters,
        "states": OrderState.choices,
        "sellers": orders.sellers(),
        "any_order": page.paginator.count > 0 or Order.objects.exists(),
    }
    return render(request, "console/orders.html", context)


def order_page(request: HttpRequest, order_id: int) -> HttpResponse:
    _require_orders(request)
    order = get_object_or_404(Order.objects.select_related("buyer", "seller"), pk=order_id)
    buyer = order.buyer
    context = {
        **admin.site.each_context(request),
        "title": f"Order #{order.pk}",
        "o": orders.order_view(order),
        "order": order,
        "ids": [
            i for i in (order.checkout_session_id, order.payment_intent_id, order.charge_id) if i
        ],
        "finance": can_view_finance_details(request.user),
        "may_refund": buyer is not None
        and order.charge_id
        and order.refundable > 0
        and (can_request_refund(request.user, buyer) or can_issue_refund(request.user, buyer)),
    }
    return render(request, "console/order_page.html", context)
