"""Links from our pages, tickets and notes to an object in Stripe's dashboard.

In config rather than billing because the customer page (customers, which may not
import billing) links to Stripe too. ``STRIPE_DASHBOARD_URL`` is the dashboard's
address; test-mode objects live under its ``/test/`` path.
"""

from __future__ import annotations

from django.conf import settings

# Dashboard path of each kind of object, by the prefix of its id.
_PATHS = {
    "cus_": "customers",
    "sub_": "subscriptions",
    "in_": "invoices",
    "ch_": "payments",
    "pi_": "payments",
    "re_": "refunds",
    "dp_": "disputes",
    "evt_": "events",
}


def stripe_dashboard_url(object_id: str, *, livemode: bool | None = None) -> str | None:
    """The dashboard page of ``object_id``, or None when the id is not a kind we link.

    ``livemode`` is the object's own mode when known (an event says it); by default the
    mode of our Stripe key."""
    path = next((p for prefix, p in _PATHS.items() if (object_id or "").startswith(prefix)), None)
    if path is None:
        return None
    if livemode is None:
        livemode = settings.STRIPE_LIVE_MODE
    base = settings.STRIPE_DASHBOARD_URL.rstrip("/")
    return f"{base}{'' if livemode else '/test'}/{path}/{object_id}"
