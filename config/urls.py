"""URL map: the admin console (with the owner-only job dashboard) and app routes."""

from django.contrib import admin
from django.urls import include, path

from config import health, rq_admin

admin.site.site_header = "Switchboard"
admin.site.site_title = "Switchboard console"
admin.site.index_title = "Payments, CRM and support in one place"
rq_admin.install()

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("", include("billing.urls")),
]
