"""The demo's second factor: an authenticator already set up for the demo logins whose
role needs one, and the code it shows now (for a person without an authenticator app at
hand, and for scripts/lighthouse.py's login)."""

from __future__ import annotations

import time
from typing import Any

from django_otp.oath import hotp
from django_otp.plugins.otp_totp.models import TOTPDevice


def authenticator_for(user: Any, *, name: str = "Demo authenticator") -> TOTPDevice:
    """The user's first confirmed authenticator, created (confirmed) when they have none."""
    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("pk").first()
    return device or TOTPDevice.objects.create(user=user, name=name, confirmed=True)


def current_code(device: TOTPDevice) -> str:
    """A code the device accepts now: this step's, or the next one's when this step's was
    used already (django-otp refuses a step twice and accepts one step of drift)."""
    device.refresh_from_db()
    now = int((time.time() - device.t0) // device.step) + device.drift
    counter = max(now, device.last_t + 1)
    if counter > now + device.tolerance:
        raise RuntimeError("this step's codes were used already: try again in 30 seconds")
    return str(hotp(device.bin_key, counter, device.digits)).zfill(device.digits)
