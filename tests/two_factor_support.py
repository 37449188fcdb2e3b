"""Test aids for the second factor: devices, the codes an authenticator app would show,
and signed-in sessions that already hold their second factor."""

from __future__ import annotations

import time
from base64 import b32decode
from typing import Any

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice

from customers.two_factor import two_factor_required
from customers.two_factor_views import VERIFIED_AT_SESSION_KEY
from devkit.two_factor import authenticator_for, current_code


def totp_device(user: Any, *, name: str = "Test phone") -> TOTPDevice:
    """The user's first confirmed authenticator, created when they have none."""
    return authenticator_for(user, name=name)


def _hotp_at(key: bytes, counter: int, digits: int) -> str:
    """RFC 6238 is HOTP over the time step: django-otp's own function computes it."""
    return str(hotp(key, counter, digits)).zfill(digits)


def code_from_secret(secret: str, *, offset: int = 0) -> str:
    """The code for a base32 secret as shown on the enrolment page, ``offset`` steps on."""
    padded = secret.replace(" ", "").upper()
    padded += "=" * (-len(padded) % 8)
    return _hotp_at(b32decode(padded), int(time.time() // 30) + offset, 6)


# A code the device accepts now (this step's, or the next one's once this one was used).
next_code = current_code


def mark_verified(client: Client, user: Any) -> None:
    """Give a force-logged-in test client the second factor its role needs, as if the
    user had entered a code."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    if device is None and two_factor_required(user):
        device = totp_device(user)
    if device is None:
        return
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session[VERIFIED_AT_SESSION_KEY] = time.time()
    session.save()
