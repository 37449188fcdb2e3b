"""Staff logins in the admin: every save and password change is audited; roles change
only through ``manage.py create_staff_user`` (the customer page is the console's)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnAttestation, WebAuthnCredential

from customers import services, two_factor

# --- second factor -------------------------------------------------------------------------
# django-otp's own TOTPDevice admin shows each secret key and its QR code to whoever may view
# the model (and its config URL answers 500 for an unknown id). Devices are managed on the
# Two factors pages instead (customers/two_factor_views.py); an owner resets someone's from
# their Users page.
# The same for passkeys (django-otp-webauthn's admin).
for _model in (TOTPDevice, WebAuthnCredential, WebAuthnAttestation):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)

# --- staff logins ----------------------------------------------------------------------

User = get_user_model()
if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class StaffUserAdmin(UserAdmin):
    """Admin -> Users for owners: every save and password change is audited.

    A person gets a role, never a single permission: groups, single permissions and
    superuser status are read-only here (the stock admin would let an owner hand a
    support agent ``issue_refund`` or make anyone a superuser, unaudited). Roles change
    with ``manage.py create_staff_user EMAIL --role ROLE``, which audits the change.
    """

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        fixed = (
            "is_superuser",
            "groups",
            "user_permissions",
            "last_login",
            "date_joined",
            "second_factor",
        )
        return (*super().get_readonly_fields(request, obj), *fixed) if obj else ()

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return [*fieldsets, ("Second factor", {"fields": ("second_factor",)})]

    @admin.display(description="Second factor")
    def second_factor(self, obj: Any) -> str:
        devices = two_factor.totp_devices(obj).count() + two_factor.passkeys(obj).count()
        left = two_factor.recovery_codes_left(obj)
        if devices:
            status = f"{devices} authenticator(s) or passkey(s), {left} unused recovery code(s)"
        elif two_factor.two_factor_required(obj):
            status = "none yet: sets one up at the next sign-in (required for this role)"
        else:
            status = "none (optional for this role)"
        if devices:  # the reset page checks the permission again (owners only)
            url = reverse("two_factor:reset", args=[obj.pk])
            return format_html('{} · <a href="{}">Reset…</a>', status, url)
        return status

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        services.staff_user_record_admin_save(
            actor=request.user, user=obj, created=not change, changed=list(form.changed_data)
        )

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> Any:
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302:
            services.staff_user_record_password_set(
                actor=request.user, user=self.get_object(request, id)
            )
        return response
