"""Who may use the console's own records (alerts, API tokens)."""

from __future__ import annotations

from typing import Any

VIEW_ALERT = "console.view_alert"
ADD_APITOKEN = "console.add_apitoken"
CHANGE_APITOKEN = "console.change_apitoken"
VIEW_APITOKEN = "console.view_apitoken"


def can_manage_api_tokens(user: Any) -> bool:
    return bool(user.has_perm(ADD_APITOKEN))
