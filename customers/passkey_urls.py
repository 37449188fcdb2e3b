"""Passkey ceremonies under /admin/2fa/passkeys/, by django-otp-webauthn's own URL names
(its template tags reverse ``otp_webauthn:...``), served by customers/passkey_views.py."""

from django.urls import path
from django.views.i18n import JavaScriptCatalog

from customers import passkey_views as views

app_name = "otp_webauthn"

urlpatterns = [
    path(
        "registration/begin/",
        views.PasskeyRegistrationBegin.as_view(),
        name="credential-registration-begin",
    ),
    path(
        "registration/complete/",
        views.PasskeyRegistrationComplete.as_view(),
        name="credential-registration-complete",
    ),
    path(
        "authentication/begin/",
        views.PasskeyAuthenticationBegin.as_view(),
        name="credential-authentication-begin",
    ),
    path(
        "authentication/complete/",
        views.PasskeyAuthenticationComplete.as_view(),
        name="credential-authentication-complete",
    ),
    # The texts of the library's script (a script file from our own origin, CSP-clean).
    path(
        "jsi18n/",
        JavaScriptCatalog.as_view(packages=["django_otp_webauthn"]),
        name="js-i18n-catalog",
    ),
]
