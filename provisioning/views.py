"""The console's provisioning pages (behind ``admin.site.admin_view``; CSRF on every form):

- ``/admin/console/onboarding/``: paid, not yet onboarded (everyone who sees billing);
- ``/admin/console/product-endpoints/``: the product's webhook endpoints (owners manage,
  finance admins read), with each endpoint's delivery log and, for owners, adding one,
  enabling/disabling it and rotating its secret behind a confirmation page.

A clear secret appears only in the response to the request that made it, never again.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from provisioning import endpoints, selectors
from provisioning.models import ProductEndpoint
from provisioning.permissions import (
    VIEW_ONBOARDING,
    can_manage_endpoints,
    can_rotate_secret,
    can_view_endpoints,
)


def _page(request: HttpRequest, template: str, title: str, **context: Any) -> HttpResponse:
    return render(
        request, template, {**admin.site.each_context(request), "title": title, **context}
    )


def onboarding_list(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(VIEW_ONBOARDING):
        raise PermissionDenied
    return _page(
        request,
        "provisioning/onboarding.html",
        "Paid, not yet onboarded",
        rows=selectors.paid_not_onboarded(),
    )


def _endpoints_page(request: HttpRequest, **context: Any) -> HttpResponse:
    return _page(
        request,
        "provisioning/endpoints.html",
        "Product webhook endpoints",
        endpoints=ProductEndpoint.objects.order_by("pk"),
        can_manage=can_manage_endpoints(request.user),
        can_rotate=can_rotate_secret(request.user),
        **context,
    )


@require_http_methods(["GET", "POST"])
def endpoint_list(request: HttpRequest) -> HttpResponse:
    if not can_view_endpoints(request.user):
        raise PermissionDenied
    if request.method == "GET":
        return _endpoints_page(request)
    action = request.POST.get("action")
    if action == "add":
        try:
            endpoint, secret = endpoints.endpoint_create(
                actor=request.user,
                url=request.POST.get("url", ""),
                description=request.POST.get("description", ""),
            )
        except ValidationError as exc:
            return _endpoints_page(
                request,
                error=" ".join(exc.messages),
                form={
                    "url": request.POST.get("url", ""),
                    "description": request.POST.get("description", ""),
                },
            )
        return _endpoints_page(request, revealed=(endpoint, secret))
    if action in ("enable", "disable"):
        endpoint = get_object_or_404(ProductEndpoint, pk=_pk(request.POST.get("endpoint")))
        endpoints.endpoint_set_enabled(
            actor=request.user, endpoint_pk=endpoint.pk, enabled=action == "enable"
        )
        messages.success(request, f"Endpoint #{endpoint.pk} {action}d.")
        return HttpResponseRedirect(reverse("provisioning_endpoints"))
    return _endpoints_page(request, error="Unknown action.")


def _pk(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


@require_http_methods(["GET", "POST"])
def endpoint_rotate(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    if not can_rotate_secret(request.user):
        raise PermissionDenied
    endpoint = get_object_or_404(ProductEndpoint, pk=endpoint_id)
    if request.method == "GET" or request.POST.get("confirm") != "yes":
        return _page(
            request,
            "provisioning/rotate.html",
            f"Rotate the signing secret of endpoint #{endpoint.pk}",
            endpoint=endpoint,
            overlap=settings.PRODUCT_WEBHOOK_SECRET_OVERLAP_HOURS,
            unconfirmed=request.method == "POST",
        )
    try:
        secret = endpoints.endpoint_rotate_secret(
            actor=request.user, endpoint_pk=endpoint.pk, reason=request.POST.get("reason", "")
        )
    except ValidationError as exc:  # a rotation is still in its overlap
        return _endpoints_page(request, error=" ".join(exc.messages))
    endpoint.refresh_from_db()
    return _endpoints_page(request, revealed=(endpoint, secret), rotated=True)


def endpoint_deliveries(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    if not can_view_endpoints(request.user):
        raise PermissionDenied
    endpoint = get_object_or_404(ProductEndpoint, pk=endpoint_id)
    return _page(
        request,
        "provisioning/deliveries.html",
        f"Deliveries to endpoint #{endpoint.pk}",
        endpoint=endpoint,
        rows=selectors.endpoint_deliveries(endpoint),
    )
