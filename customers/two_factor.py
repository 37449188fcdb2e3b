"""Two factors for staff: who needs one, enrolment, verification, recovery codes, reset.

The second factor is an authenticator app (django-otp's ``TOTPDevice``: RFC 6238 codes,
replay refused, wrong codes throttled 1, 2, 4 ... s) with one-time recovery codes as the
fallback (``customers.models.RecoveryCodeDevice``, stored as hashes). Staff in
``settings.TWO_FACTOR_REQUIRED_ROLES`` (owners and finance admins by default) and
superusers must enrol at their first login; anyone who enrolled verifies at every login.
``customers.middleware.TwoFactorMiddleware`` holds a session that still owes its second
factor away from every staff page; the views are in ``customers/two_factor_views.py``.

Every enrolment, device removal, set of recovery codes, recovery-code use, reset and
wrong code is an audit entry. No entry, log line or exception carries a secret or a code.
"""

from __future__ import annotations

import hashlib
import secrets
from base64 import b32encode
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone
from django_otp import verify_token
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.helpers import WebAuthnHelper
from django_otp_webauthn.models import WebAuthnCredential

from audit import codes
from audit.services import audit_record
from customers.models import RecoveryCode, RecoveryCodeDevice
from customers.permissions import CHANGE_USER

VERIFY = "verify"
ENROL = "enrol"
# 16 base32 characters: 80 random bits, shown as four groups of four.
_RECOVERY_CHARS = 16
_RECOVERY_ALPHABET = set("abcdefghijklmnopqrstuvwxyz234567")


# --- who must have a second factor ------------------------------------------------------------


def two_factor_required(user: Any) -> bool:
    """True for an active staff user the setting requires to use a second factor."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    required = set(settings.TWO_FACTOR_REQUIRED_ROLES)
    if not required:
        return False
    if user.is_superuser:
        return True
    return user.groups.filter(name__in=required).exists()


def totp_devices(user: Any) -> Any:
    """The user's confirmed authenticator apps, oldest first."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk")


def passkeys(user: Any) -> Any:
    """The user's passkeys (django-otp-webauthn), oldest first."""
    return WebAuthnCredential.objects.filter(user=user, confirmed=True).order_by("pk")


def is_enrolled(user: Any) -> bool:
    """Has a second factor of their own: an authenticator app or a passkey."""
    return totp_devices(user).exists() or passkeys(user).exists()


def recovery_codes_left(user: Any) -> int:
    return RecoveryCode.objects.filter(device__user=user).count()


def pending_step(user: Any) -> str | None:
    """What a signed-in session still owes before staff pages open: ``VERIFY`` (enter a
    code), ``ENROL`` (set up an authenticator first) or ``None`` (nothing).

    The result is kept on the user object: the middleware and the admin site both ask
    within one request."""
    if not user.is_authenticated:
        return None
    cached = getattr(user, "_two_factor_pending", "unset")
    if cached != "unset":
        return cached
    step: str | None = None
    if not _session_verified(user):
        if is_enrolled(user):
            step = VERIFY
        elif two_factor_required(user):
            step = ENROL
    user._two_factor_pending = step
    return step


def _session_verified(user: Any) -> bool:
    is_verified = getattr(user, "is_verified", None)
    return bool(is_verified and is_verified())


# --- recovery codes ------------------------------------------------------------------------


def recovery_code_normalise(code: str) -> str:
    """Lower case, without the spaces and dashes people type; '' when it cannot be a code."""
    text = "".join(ch for ch in str(code).lower() if ch not in " -\t")
    if len(text) != _RECOVERY_CHARS or not set(text) <= _RECOVERY_ALPHABET:
        return ""
    return text


def recovery_code_hash(code: str) -> str:
    text = recovery_code_normalise(code)
    return hashlib.sha256(text.encode()).hexdigest() if text else ""


def _new_recovery_code() -> str:
    text = b32encode(secrets.token_bytes(10)).decode().lower()
    return "-".join(text[i : i + 4] for i in range(0, _RECOVERY_CHARS, 4))


# --- passkeys (django-otp-webauthn does the ceremonies; customers/passkey_views.py) ------------


def passkey_rp_id(request: HttpRequest) -> str:
    """The relying party id is the host the console is reached at (ALLOWED_HOSTS decides
    which hosts those can be); a passkey works only there, and the browser checks it."""
    return request.get_host().rsplit(":", 1)[0].strip("[]")


class PasskeyHelper(WebAuthnHelper):
    def get_allowed_origins(self) -> list[str]:
        """PASSKEY_ORIGINS when set (behind a proxy, give the public https origin), else
        the origin this request came to."""
        return super().get_allowed_origins() or [
            f"{self.request.scheme}://{self.request.get_host()}"
        ]


def passkey_enrolled(*, actor: Any, device_id: int) -> None:
    """Audit a passkey django-otp-webauthn just registered for the actor."""
    device = passkeys(actor).get(pk=device_id)
    audit_record(
        action=codes.STAFF_2FA_ENROLLED,
        actor=actor,
        target=actor,
        data={"device": device.name, "method": "passkey", "passkeys": passkeys(actor).count()},
    )


def passkey_failed(*, user: Any) -> None:
    """Audit a passkey the server refused at the code step."""
    _record_failure(user=user, method="passkey", info=None)


def recovery_codes_generate(*, actor: Any) -> list[str]:
    """Replace the actor's recovery codes with a new set and return it (shown once).

    Only an enrolled user has recovery codes: they stand in for the authenticator app."""
    if not is_enrolled(actor):
        raise ValidationError("Set up an authenticator app first; recovery codes back it up.")
    new_codes = [_new_recovery_code() for _ in range(settings.TWO_FACTOR_RECOVERY_CODES)]
    with transaction.atomic():
        device, _ = RecoveryCodeDevice.objects.select_for_update().get_or_create(
            user=actor, defaults={"name": "Recovery codes", "confirmed": True}
        )
        replaced = device.codes.count()
        device.codes.all().delete()
        RecoveryCode.objects.bulk_create(
            RecoveryCode(device=device, code_hash=recovery_code_hash(code)) for code in new_codes
        )
        device.throttle_reset(commit=False)
        device.save()
        audit_record(
            action=codes.STAFF_2FA_RECOVERY_CODES_GENERATED,
            actor=actor,
            target=actor,
            data={"count": len(new_codes), "unused_replaced": replaced},
        )
    return new_codes


# --- enrolment -----------------------------------------------------------------------------


def enrolment_start(*, user: Any, device_id: int | None = None) -> TOTPDevice:
    """The unconfirmed authenticator this enrolment shows (the one already shown, when
    ``device_id`` names it, so a reload does not change the secret)."""
    if device_id is not None:
        device = TOTPDevice.objects.filter(pk=device_id, user=user, confirmed=False).first()
        if device is not None:
            return device
    # Abandoned enrolments are dropped: one unconfirmed secret at a time.
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=False)


@dataclass
class Enrolled:
    device: TOTPDevice
    recovery_codes: list[str] | None  # the first set, when the user had none


def enrolment_confirm(*, user: Any, device_id: int, code: str, name: str = "") -> Enrolled:
    """Confirm an authenticator with a code it shows; the first one also gets recovery codes.

    A wrong code is refused (and throttled and audited like any wrong code)."""
    device = TOTPDevice.objects.filter(pk=device_id, user=user, confirmed=False).first()
    if device is None:
        raise ValidationError("This set-up has expired; start again.")
    code = _digits(code)
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().get(pk=device.pk)
        allowed, info = device.verify_is_allowed()
        ok = allowed and bool(code) and device.verify_token(code)
    if not ok:
        _record_failure(user=user, method="enrolment", info=None if allowed else info)
        raise ValidationError(_wrong_code_message(None if allowed else info))
    with transaction.atomic():
        device.confirmed = True
        device.name = (name or "").strip()[:64] or "Authenticator app"
        device.save(update_fields=["confirmed", "name"])
        audit_record(
            action=codes.STAFF_2FA_ENROLLED,
            actor=user,
            target=user,
            data={"device": device.name, "method": "totp", "devices": totp_devices(user).count()},
        )
    first_codes = None
    if not RecoveryCode.objects.filter(device__user=user).exists():
        first_codes = recovery_codes_generate(actor=user)
    return Enrolled(device=device, recovery_codes=first_codes)


# --- verification ----------------------------------------------------------------------------


@dataclass
class Verification:
    device: Any | None  # the device that accepted the code, None when refused
    message: str = ""


def second_factor_verify(*, user: Any, code: str) -> Verification:
    """Check a code from the user's authenticator, or one of their recovery codes.

    Six digits are tried against each authenticator (django-otp locks the device row, so
    one code cannot be used twice even by two requests at once); anything else is tried
    as a recovery code, which is then used up. Wrong codes are throttled per device and
    audited; a recovery code's use is audited with how many are left."""
    digits = _digits(code)
    blocked: dict[str, Any] | None = None
    if digits:
        method = "totp"
        for device in totp_devices(user):
            allowed, info = device.verify_is_allowed()
            if not allowed:
                blocked = info
                continue
            accepted = verify_token(user, device.persistent_id, digits)
            if accepted is not None:
                return Verification(device=accepted)
    else:
        method = "recovery_code"
        device = RecoveryCodeDevice.objects.filter(user=user).first()
        if device is not None and recovery_code_normalise(code):
            allowed, info = device.verify_is_allowed()
            if not allowed:
                blocked = info
            else:
                accepted = verify_token(user, device.persistent_id, code)
                if accepted is not None:
                    audit_record(
                        action=codes.STAFF_2FA_RECOVERY_CODE_USED,
                        actor=user,
                        target=user,
                        data={"left": accepted.codes.count()},
                    )
                    return Verification(device=accepted)
    _record_failure(user=user, method=method, info=blocked)
    return Verification(device=None, message=_wrong_code_message(blocked))


def _digits(code: str) -> str:
    text = "".join(ch for ch in str(code or "") if ch not in " -\t")
    return text if text.isdigit() and len(text) in (6, 8) else ""


def _wrong_code_message(blocked: dict[str, Any] | None) -> str:
    if blocked and blocked.get("locked_until"):
        wait = max(1, int((blocked["locked_until"] - timezone.now()).total_seconds()) + 1)
        return f"Too many wrong codes: wait {wait} seconds, then try the newest code."
    return "That code is not right. Enter the current code from your app, or a recovery code."


def _record_failure(*, user: Any, method: str, info: dict[str, Any] | None) -> None:
    audit_record(
        action=codes.STAFF_2FA_FAILED,
        actor=user,
        target=user,
        data={
            "method": method,
            "throttled": bool(info),
            "failures": (info or {}).get("failure_count"),
        },
    )


def recently_verified(verified_at: float | None, now: datetime | None = None) -> bool:
    """Whether a code entered at ``verified_at`` (a Unix time) is recent enough for adding
    or removing a device or new recovery codes."""
    if not verified_at:
        return False
    now = now or timezone.now()
    return now.timestamp() - float(verified_at) < settings.TWO_FACTOR_REVERIFY_MINUTES * 60


# --- removing and resetting ------------------------------------------------------------------


def device_remove(*, actor: Any, device_id: int, kind: str = "totp") -> None:
    """Remove one of the actor's own authenticators (``kind="totp"``) or passkeys
    (``"passkey"``). The last second factor of a user who must have one stays (add another
    first, or ask an owner for a reset); removing the last one of anyone else removes
    their recovery codes too."""
    model = WebAuthnCredential if kind == "passkey" else TOTPDevice
    with transaction.atomic():
        device = model.objects.select_for_update().filter(pk=device_id, user=actor).first()
        if device is None or not device.confirmed:
            raise ValidationError("No such authenticator.")
        # the device itself is confirmed and counted once
        others = totp_devices(actor).count() + passkeys(actor).count() - 1
        if not others and two_factor_required(actor):
            raise ValidationError(
                "Your role needs a second factor: add another authenticator or passkey before "
                "removing this one, or ask an owner to reset your second factor."
            )
        name = device.name
        device.delete()
        dropped = 0
        if not others:
            dropped = RecoveryCode.objects.filter(device__user=actor).count()
            RecoveryCodeDevice.objects.filter(user=actor).delete()
        audit_record(
            action=codes.STAFF_2FA_DEVICE_REMOVED,
            actor=actor,
            target=actor,
            data={
                "device": name,
                "method": kind,
                "devices_left": others,
                "recovery_codes_removed": dropped,
            },
        )


def two_factor_reset(*, actor: Any | None, user_id: int, reason: str) -> None:
    """Remove every second factor of another staff user (lost phone and recovery codes):
    they enrol again at their next request. Owners only (``actor=None``: the
    ``two_factor_reset`` command, run by whoever holds the server); a reason is required
    and kept in the audit entry."""
    if actor is not None and not actor.has_perm(CHANGE_USER):
        raise PermissionDenied("Only owners may reset another person's second factor.")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError("Say why (e.g. 'lost phone, confirmed by a call'): it is audited.")
    User = get_user_model()
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            raise ValidationError("No such staff user.")
        if actor is not None and user.pk == actor.pk:
            raise ValidationError("Manage your own second factor on your Two factors page.")
        devices = TOTPDevice.objects.filter(user=user)
        removed = devices.filter(confirmed=True).count() + passkeys(user).count()
        left = RecoveryCode.objects.filter(device__user=user).count()
        devices.delete()
        WebAuthnCredential.objects.filter(user=user).delete()
        RecoveryCodeDevice.objects.filter(user=user).delete()
        audit_record(
            action=codes.STAFF_2FA_RESET,
            actor=actor,
            target=user,
            data={
                "reason": reason[:500],
                "devices_removed": removed,
                "recovery_codes_removed": left,
            },
        )
