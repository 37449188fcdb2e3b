"""Passkeys (WebAuthn) as a second factor: django-otp-webauthn's ceremonies with
Switchboard's rules around them.

- Registering a passkey is for a user who already has an authenticator app and entered a
  code in the last few minutes (from the Two factors page); it is audited.
- A passkey is a second factor only (``OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False``):
  at the code step, for the signed-in user's own passkeys. A success marks the session
  verified as a code does (new session key, the recent-code time); a refusal is audited.

The URL names are the library's (namespace ``otp_webauthn``) so its template tags and
JavaScript find these views (customers/passkey_urls.py).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from django.db import transaction
from django.http import HttpResponse
from django_otp_webauthn import exceptions
from django_otp_webauthn.views import (
    BeginCredentialAuthenticationView,
    BeginCredentialRegistrationView,
    CompleteCredentialAuthenticationView,
    CompleteCredentialRegistrationView,
)

from customers import two_factor
from customers.two_factor_views import VERIFIED_AT_SESSION_KEY

logger = logging.getLogger(__name__)


class CodeFirst(exceptions.OTPWebAuthnApiError):
    status_code = 403
    default_code = "code_first"
    default_detail = "Enter a current code from your authenticator app first, then add a passkey."


class _NoServerErrors:
    """Whatever a client posts, a 4xx: the library answers its own errors as JSON but lets
    anything else (a body of the wrong shape) through as a 500."""

    def handle_exception(self, exc: Exception) -> HttpResponse:
        if isinstance(exc, KeyError | TypeError | ValueError | AttributeError | IndexError):
            logger.warning("passkey request refused: %s", type(exc).__name__)
            exc = exceptions.MalformedRequest()
        return super().handle_exception(exc)  # type: ignore[misc]


class _RegistrationRules(_NoServerErrors):
    def check_can_register(self) -> None:
        user = self.request.user  # type: ignore[attr-defined]
        if not (user.is_active and user.is_staff):
            raise exceptions.NotAuthenticated()
        if not two_factor.totp_devices(user).exists() or not two_factor.recently_verified(
            self.request.session.get(VERIFIED_AT_SESSION_KEY)  # type: ignore[attr-defined]
        ):
            raise CodeFirst()


class PasskeyRegistrationBegin(_RegistrationRules, BeginCredentialRegistrationView):
    pass


class PasskeyRegistrationComplete(_RegistrationRules, CompleteCredentialRegistrationView):
    def post(self, *args: Any, **kwargs: Any) -> HttpResponse:
        # The credential and its audit entry commit together, or neither does.
        with transaction.atomic():
            response = super().post(*args, **kwargs)
            device_id = json.loads(response.content)["id"]
            two_factor.passkey_enrolled(actor=self.request.user, device_id=device_id)
        return response


class _StaffOnly(_NoServerErrors):
    def check_can_authenticate(self) -> None:
        user = self.request.user  # type: ignore[attr-defined]
        if not (user.is_authenticated and user.is_active and user.is_staff):
            raise exceptions.PasswordlessLoginDisabled()


class PasskeyAuthenticationBegin(_StaffOnly, BeginCredentialAuthenticationView):
    pass


class PasskeyAuthenticationComplete(_StaffOnly, CompleteCredentialAuthenticationView):
    def complete_auth(self, device: Any) -> None:
        super().complete_auth(device)  # django_otp.login: the session's verified device
        self.request.session.cycle_key()
        self.request.session[VERIFIED_AT_SESSION_KEY] = time.time()

    def handle_exception(self, exc: Exception) -> HttpResponse:
        user = self.request.user
        if user.is_authenticated and not isinstance(exc, exceptions.InvalidState):
            two_factor.passkey_failed(user=user)
        return super().handle_exception(exc)
