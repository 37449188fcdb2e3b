"""URL map: the admin console (with the owner-only job dashboard) and app routes."""

from django.contrib import admin
from django.urls import include, path

from config import djstripe_admin, health, rq_admin
from console import api_views
from console.dashboard_views import console_dashboard

admin.site.site_header = "Switchboard"
admin.site.site_title = "Switchboard console"
admin.site.index_title = "Payments, CRM and support in one place"
rq_admin.install()
djstripe_admin.install()

# PostgreSQL unreachable: a 503 page that says so; any other error: a plain 500 page.
handler500 = "config.errors.server_error"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # The console: the operations dashboard inside the admin, and the
    # account-state API for chatbots and help widgets.
    path("admin/console/", admin.site.admin_view(console_dashboard), name="console_dashboard"),
    path("api/v1/customers/<str:ref>/state", api_views.customer_state, name="api_customer_state"),
    path("api/v1/openapi.json", api_views.openapi_document, name="api_openapi"),
    path("admin/", admin.site.urls),
    path("", include("billing.urls")),
]
