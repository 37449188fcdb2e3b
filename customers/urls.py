"""The second factor's pages, under /admin/2fa/ (customers/two_factor_views.py)."""

from django.urls import path

from customers import two_factor_views as views

app_name = "two_factor"

urlpatterns = [
    path("", views.manage_view, name="manage"),
    path("verify/", views.verify_view, name="verify"),
    path("enrol/", views.enrol_view, name="enrol"),
    path("recovery-codes/", views.recovery_codes_view, name="recovery_codes"),
    path("devices/<int:pk>/remove/", views.device_remove_view, name="device_remove"),
    path(
        "passkey/<int:pk>/remove/",
        views.device_remove_view,
        {"kind": "passkey"},
        name="passkey_remove",
    ),
    path("reset/<int:user_id>/", views.reset_view, name="reset"),
]
