"""Pages of the second factor (/admin/2fa/...): the code step after the password,
enrolment, a person's own Two factors page, and an owner's reset of someone else's.

The writes are services in customers/two_factor.py; these views only read forms, keep
the session's verified state and render. Pages that show a secret or recovery codes are
never cached.
"""

from __future__ import annotations

import time
from typing import Any

import segno
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login

from customers import two_factor
from customers.models import RecoveryCodeDevice
from customers.permissions import CHANGE_USER

ENROL_SESSION_KEY = "two_factor_enrol_device"
VERIFIED_AT_SESSION_KEY = "two_factor_verified_at"


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=40,
        strip=True,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "autofocus": True,
                "inputmode": "text",
                "spellcheck": "false",
                "autocapitalize": "off",
            }
        ),
        help_text="The 6-digit code your authenticator app shows now, or a recovery code.",
    )


class EnrolForm(forms.Form):
    code = forms.CharField(
        label="Code from the app",
        max_length=12,
        strip=True,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )
    name = forms.CharField(
        label="Name this device",
        max_length=64,
        required=False,
        initial="Authenticator app",
        help_text="So you can tell your devices apart later, e.g. 'Work phone'.",
    )


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Kept in the audit log, e.g. 'lost phone, identity confirmed by a call'.",
    )


def _context(request: HttpRequest, title: str, **extra: Any) -> dict[str, Any]:
    context = admin.site.each_context(request)
    context.update(title=title, **extra)
    return context


def _next_url(request: HttpRequest, default: str | None = None) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default or reverse("admin:index")


def _mark_verified(request: HttpRequest, device: Any) -> None:
    """The session now holds its second factor: a new session key (as at any change of
    privilege), the device for django-otp, and when, for the recent-code rule."""
    request.session.cycle_key()
    otp_login(request, device)
    request.session[VERIFIED_AT_SESSION_KEY] = time.time()
    request.user._two_factor_pending = None


def _reverify(request: HttpRequest, back: str) -> HttpResponse | None:
    """Changes to one's second factor need a code entered in the last few minutes."""
    if two_factor.recently_verified(request.session.get(VERIFIED_AT_SESSION_KEY)):
        return None
    messages.info(request, "Enter a current code first: changes to your second factor need one.")
    query = urlencode({"next": back, "again": "1"})
    return HttpResponseRedirect(f"{reverse('two_factor:verify')}?{query}")


@never_cache
@staff_member_required
@require_http_methods(["GET", "POST"])
def verify_view(request: HttpRequest) -> HttpResponse:
    """The code step after the password (and again before changing one's second factor)."""
    user = request.user
    next_url = _next_url(request)
    if not two_factor.is_enrolled(user):
        if two_factor.two_factor_required(user):
            return HttpResponseRedirect(
                f"{reverse('two_factor:enrol')}?{urlencode({'next': next_url})}"
            )
        return HttpResponseRedirect(next_url)
    if user.is_verified() and not request.GET.get("again") and request.method == "GET":
        return HttpResponseRedirect(next_url)
    form = CodeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = two_factor.second_factor_verify(user=user, code=form.cleaned_data["code"])
        if result.device is not None:
            _mark_verified(request, result.device)
            if isinstance(result.device, RecoveryCodeDevice):
                left = two_factor.recovery_codes_left(user)
                messages.warning(
                    request,
                    f"You used a recovery code; {left} left. Make new ones on your "
                    "Two factors page if you are running low.",
                )
            return HttpResponseRedirect(next_url)
        form.add_error("code", result.message)
    return render(
        request,
        "admin/two_factor/verify.html",
        _context(
            request,
            "Enter your code",
            form=form,
            next=next_url,
            has_passkeys=two_factor.passkeys(user).exists(),
            again=bool(request.GET.get("again") or request.POST.get("again")),
            has_permission=False,
        ),
        status=200 if request.method == "GET" or form.is_valid() else 400,
    )


@never_cache
@staff_member_required
@require_http_methods(["GET", "POST"])
def enrol_view(request: HttpRequest) -> HttpResponse:
    """Set up an authenticator: QR code and secret, then a code from the app to confirm.

    The first enrolment needs only the password (that is what first login is); adding a
    further device needs the session verified, with a recent code."""
    user = request.user
    enrolled = two_factor.is_enrolled(user)
    next_url = _next_url(request, reverse("two_factor:manage"))
    if enrolled:
        if not user.is_verified():
            query = urlencode({"next": request.get_full_path()})
            return HttpResponseRedirect(f"{reverse('two_factor:verify')}?{query}")
        if (blocked := _reverify(request, request.get_full_path())) is not None:
            return blocked
    device = two_factor.enrolment_start(user=user, device_id=request.session.get(ENROL_SESSION_KEY))
    request.session[ENROL_SESSION_KEY] = device.pk
    form = EnrolForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        try:
            done = two_factor.enrolment_confirm(
                user=user,
                device_id=device.pk,
                code=form.cleaned_data["code"],
                name=form.cleaned_data["name"],
            )
        except ValidationError as exc:
            form.add_error("code", exc.messages[0])
            status = 400
        else:
            request.session.pop(ENROL_SESSION_KEY, None)
            _mark_verified(request, done.device)
            if done.recovery_codes:
                return _recovery_codes_page(request, done.recovery_codes, next_url, first=True)
            messages.success(request, f"“{done.device.name}” is set up.")
            return HttpResponseRedirect(next_url)
    elif request.method == "POST":
        status = 400
    secret = device.config_url.split("secret=", 1)[1].split("&", 1)[0]
    qr = segno.make(device.config_url, error="m")
    svg = qr.svg_inline(
        scale=4, border=2, omitsize=True, title="QR code for your authenticator app"
    )
    return (  # never_cache on every view that shows a secret or codes
        render(
            request,
            "admin/two_factor/enrol.html",
            _context(
                request,
                "Set up your second factor",
                form=form,
                next=next_url,
                qr_svg=mark_safe(svg),  # noqa: S308 - segno's own SVG of our otpauth URI
                secret=secret,
                secret_groups=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
                otpauth_uri=device.config_url,
                first=not enrolled,
                required=two_factor.two_factor_required(user),
                has_permission=enrolled and user.is_verified(),
            ),
            status=status,
        )
    )


def _recovery_codes_page(
    request: HttpRequest, codes: list[str], next_url: str, *, first: bool
) -> HttpResponse:
    return (  # never_cache on every view that shows a secret or codes
        render(
            request,
            "admin/two_factor/recovery_codes.html",
            _context(request, "Your recovery codes", codes=codes, next=next_url, first=first),
        )
    )


@never_cache
@staff_member_required
def manage_view(request: HttpRequest) -> HttpResponse:
    """A person's own Two factors page: devices, recovery codes left, what they can do."""
    user = request.user
    return render(
        request,
        "admin/two_factor/manage.html",
        _context(
            request,
            "Two factors",
            devices=list(two_factor.totp_devices(user)),
            passkeys=list(two_factor.passkeys(user)),
            can_add_passkey=two_factor.totp_devices(user).exists(),
            enrolled=two_factor.is_enrolled(user),
            required=two_factor.two_factor_required(user),
            codes_left=two_factor.recovery_codes_left(user),
        ),
    )


@never_cache
@staff_member_required
@require_http_methods(["POST"])
def recovery_codes_view(request: HttpRequest) -> HttpResponse:
    """New recovery codes (the old ones stop working), shown once."""
    manage = reverse("two_factor:manage")
    if (blocked := _reverify(request, manage)) is not None:
        return blocked
    try:
        new_codes = two_factor.recovery_codes_generate(actor=request.user)
    except ValidationError as exc:
        messages.error(request, exc.messages[0])
        return HttpResponseRedirect(manage)
    return _recovery_codes_page(request, new_codes, manage, first=False)


@never_cache
@staff_member_required
@require_http_methods(["GET", "POST"])
def device_remove_view(request: HttpRequest, pk: int, kind: str = "totp") -> HttpResponse:
    """Confirm, then remove one of one's own authenticators (or passkeys)."""
    owned = two_factor.passkeys if kind == "passkey" else two_factor.totp_devices
    device = owned(request.user).filter(pk=pk).first()
    if device is None:
        raise Http404("No such authenticator.")
    if (blocked := _reverify(request, request.path)) is not None:
        return blocked
    manage = reverse("two_factor:manage")
    if request.method == "POST":
        try:
            two_factor.device_remove(actor=request.user, device_id=device.pk, kind=kind)
        except ValidationError as exc:
            messages.error(request, exc.messages[0])
        else:
            messages.success(request, f"“{device.name}” no longer signs you in.")
        return HttpResponseRedirect(manage)
    return render(
        request,
        "admin/two_factor/device_remove.html",
        _context(
            request,
            "Remove a passkey" if kind == "passkey" else "Remove an authenticator",
            device=device,
        ),
    )


@never_cache
@staff_member_required
@require_http_methods(["GET", "POST"])
def reset_view(request: HttpRequest, user_id: int) -> HttpResponse:
    """An owner removes another staff user's second factor (confirmation, reason)."""
    if not request.user.has_perm(CHANGE_USER):
        raise PermissionDenied("Only owners may reset another person's second factor.")
    target = get_user_model().objects.filter(pk=user_id, is_staff=True).first()
    if target is None:
        raise Http404("No such staff user.")
    form = ReasonForm(request.POST or None)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                two_factor.two_factor_reset(
                    actor=request.user, user_id=target.pk, reason=form.cleaned_data["reason"]
                )
            except ValidationError as exc:
                form.add_error(None, exc.messages[0])
            else:
                messages.success(
                    request,
                    f"{target.get_username()}'s second factor is removed: they set up a new "
                    "one at their next sign-in.",
                )
                return HttpResponseRedirect(reverse("admin:auth_user_change", args=[target.pk]))
    return render(
        request,
        "admin/two_factor/reset.html",
        _context(
            request,
            "Reset a second factor",
            target=target,
            form=form,
            devices=two_factor.totp_devices(target).count(),
            codes_left=two_factor.recovery_codes_left(target),
            is_self=target.pk == request.user.pk,
        ),
        status=status,
    )
