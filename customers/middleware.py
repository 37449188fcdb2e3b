"""The gate in front of every staff page for a session that still owes its second factor.

After the password a staff session is signed in but not yet verified. Until it is, every
request except the few below is redirected: to the code step when the user has an
authenticator, to enrolment when their role requires one and they have none. The check
runs on the server for every URL (console, admin, finance actions, the job-queue
dashboard), so no page is reachable by typing its address; the admin site's
``has_permission`` says the same (console/admin_site.py), a second lock on the admin.

Not gated: the login and logout pages, the second-factor pages themselves, static files,
health checks, the account-state API (API tokens, no session) and Stripe's webhooks.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from customers.two_factor import ENROL, pending_step


@cache
def _open_prefixes() -> tuple[str, ...]:
    static = "/" + settings.STATIC_URL.lstrip("/")
    return (
        reverse("admin:login"),
        reverse("admin:logout"),
        reverse("two_factor:verify"),
        reverse("two_factor:enrol"),
        # a passkey at the code step, and its script's texts
        reverse("otp_webauthn:credential-authentication-begin"),
        reverse("otp_webauthn:credential-authentication-complete"),
        reverse("otp_webauthn:js-i18n-catalog"),
        static,
        "/healthz",
        "/readyz",
        "/api/",
        "/stripe/webhook/",
        "/favicon.ico",
    )


class TwoFactorMiddleware:
    """Redirects a signed-in session that owes its second factor (after OTPMiddleware)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if (
            user is not None
            and user.is_authenticated
            and not request.path.startswith(_open_prefixes())
        ):
            step = pending_step(user)
            if step is not None:
                target = reverse("two_factor:enrol" if step == ENROL else "two_factor:verify")
                query = urlencode({"next": request.get_full_path()})
                return HttpResponseRedirect(f"{target}?{query}")
        return self.get_response(request)
