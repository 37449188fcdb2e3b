"""Who may see and change the product's webhook endpoints (roles: customers/roles.py)."""

from __future__ import annotations

from typing import Any

VIEW_ENDPOINT = "provisioning.view_productendpoint"
ADD_ENDPOINT = "provisioning.add_productendpoint"
CHANGE_ENDPOINT = "provisioning.change_productendpoint"
ROTATE_SECRET = "provisioning.rotate_secret"
# The "paid, not yet onboarded" list: anyone who may see billing state.
VIEW_ONBOARDING = "customers.view_billing"


def can_view_endpoints(user: Any) -> bool:
    return bool(user.has_perm(VIEW_ENDPOINT))


def can_manage_endpoints(user: Any) -> bool:
    return bool(user.has_perm(ADD_ENDPOINT) and user.has_perm(CHANGE_ENDPOINT))


def can_rotate_secret(user: Any) -> bool:
    return bool(user.has_perm(ROTATE_SECRET))
