"""URL map: the admin console (with the owner-only job dashboard) and app routes."""

from django.contrib import admin
from django.contrib.contenttypes import views as contenttype_views
from django.contrib.contenttypes.models import ContentType
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import include, path

from config import djstripe_admin, health, rq_admin
from console import admin_site, api_views, views
from console.dashboard_views import console_dashboard
from provisioning import views as provisioning_views

admin.site.site_header = "Switchboard"
admin.site.site_title = "Switchboard console"
admin.site.index_title = "Payments, CRM and support in one place"
rq_admin.install()
djstripe_admin.install()
admin_site.install(admin.site)  # index order, human labels, "View site" -> the console

# PostgreSQL unreachable: a 503 page that says so; any other error: a plain 500 page.
handler500 = "config.errors.server_error"


def view_on_site(request: HttpRequest, content_type_id: int, object_id: str) -> HttpResponse:
    """The admin's "view on site" redirect (/admin/r/<type>/<id>/), asked only of models
    that have a page. Django's own looks the object up first, which for django-rq's
    table-less Dashboard model was a 500 for every staff user."""
    try:
        model = ContentType.objects.get_for_id(content_type_id).model_class()
    except ContentType.DoesNotExist as exc:
        raise Http404("No such content type.") from exc
    if model is None or not hasattr(model, "get_absolute_url"):
        raise Http404("These objects have no page to show.")
    return contenttype_views.shortcut(request, content_type_id, object_id)


urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # The console: the operations dashboard inside the admin, and the
    # account-state API for chatbots and help widgets.
    path("admin/console/", admin.site.admin_view(console_dashboard), name="console_dashboard"),
    path(
        "admin/console/customers/<uuid:customer_id>/",
        admin.site.admin_view(views.customer_page),
        name="console_customer",
    ),
    path(
        "admin/console/customers/<uuid:customer_id>/live/",
        admin.site.admin_view(views.customer_live),
        name="console_customer_live",
    ),
    path(
        "admin/console/find/", admin.site.admin_view(views.customer_search), name="console_search"
    ),
    path("admin/console/orders/", admin.site.admin_view(views.orders_list), name="console_orders"),
    path(
        "admin/console/orders/<int:order_id>/",
        admin.site.admin_view(views.order_page),
        name="console_order",
    ),
    path(
        "admin/console/onboarding/",
        admin.site.admin_view(provisioning_views.onboarding_list),
        name="provisioning_onboarding",
    ),
    path(
        "admin/console/product-endpoints/",
        admin.site.admin_view(provisioning_views.endpoint_list),
        name="provisioning_endpoints",
    ),
    path(
        "admin/console/product-endpoints/<int:endpoint_id>/rotate/",
        admin.site.admin_view(provisioning_views.endpoint_rotate),
        name="provisioning_endpoint_rotate",
    ),
    path(
        "admin/console/product-endpoints/<int:endpoint_id>/deliveries/",
        admin.site.admin_view(provisioning_views.endpoint_deliveries),
        name="provisioning_endpoint_deliveries",
    ),
    path("api/v1/customers/<str:ref>/state", api_views.customer_state, name="api_customer_state"),
    path(
        "api/v1/customers/<str:ref>/provisioned",
        api_views.customer_provisioned,
        name="api_customer_provisioned",
    ),
    path("api/v1/openapi.json", api_views.openapi_document, name="api_openapi"),
    path(
        "admin/r/<int:content_type_id>/<path:object_id>/",
        admin.site.admin_view(view_on_site),
        name="admin_view_on_site",
    ),
    # The second factor: code step, enrolment, one's own devices, an owner's reset.
    path("admin/2fa/passkeys/", include("customers.passkey_urls")),
    path("admin/2fa/", include("customers.urls")),
    path("admin/", admin.site.urls),
    path("", include("billing.urls")),
]
