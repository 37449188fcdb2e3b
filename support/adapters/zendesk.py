"""Zendesk Support over plain HTTP: Users (create_or_update by external_id) and Tickets
(list by external_id, create, update).

Idempotent ticket creation: our situation key is the ticket's ``external_id``; before a
retry creates it, the ticket is looked up by it, so a retry after a lost answer (timeout
after Zendesk created it) finds the ticket instead of opening a second. A first attempt
skips the lookup: nothing can exist yet, and it saves a request against the rate limit. Authentication is an
API token: ``Basic base64("{email}/token:{token}")``. Requests go through
delivery/http.py (shared rate limiter, Retry-After, error classes).
"""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any

from delivery import http
from delivery.errors import ConfigurationError

VENDOR = "zendesk"


class ZendeskHelpdesk:
    name = "Zendesk"
    keeps_tickets = True

    def __init__(self, *, base_url: str, email: str, token: str) -> None:
        missing = [
            name
            for name, value in (("ZENDESK_BASE_URL", base_url), ("ZENDESK_EMAIL", email))
            if not value
        ]
        if missing:
            raise ConfigurationError(
                f"ZENDESK_TOKEN is set but {', '.join(missing)} is not",
                user_message=f"Zendesk is not fully configured: set {', '.join(missing)}",
            )
        self.base_url = base_url.rstrip("/")
        credentials = base64.b64encode(f"{email}/token:{token}".encode()).decode()
        self.headers = {"Authorization": f"Basic {credentials}"}

    def _call(self, method: str, path: str, payload: Any = None) -> http.Response:
        return http.request(
            VENDOR, method, self.base_url + path, headers=self.headers, payload=payload
        )

    def user_upsert(self, *, external_id: str, email: str, name: str) -> str:
        user: dict[str, Any] = {
            "external_id": external_id,
            "name": name or email or external_id,
            "role": "end-user",
        }
        if email:
            user["email"] = email
        response = self._call("POST", "/api/v2/users/create_or_update.json", {"user": user})
        return str(response.body["user"]["id"])

    def user_erase(self, *, user_id: str) -> None:
        """Zendesk's permanent deletion: a user must be deleted (``DELETE
        /api/v2/users/{id}``) before it can be deleted permanently (``DELETE
        /api/v2/deleted_users/{id}``). A 404 at either step means that step is done."""
        for path in (f"/api/v2/users/{user_id}.json", f"/api/v2/deleted_users/{user_id}.json"):
            http.request(
                VENDOR, "DELETE", self.base_url + path, headers=self.headers, ok_statuses=(404,)
            )

    def ticket_find(self, *, external_id: str) -> str:
        query = urllib.parse.urlencode({"external_id": external_id})
        response = self._call("GET", f"/api/v2/tickets.json?{query}")
        tickets = (response.body or {}).get("tickets") or []
        return str(tickets[0]["id"]) if tickets else ""

    def ticket_create(
        self,
        *,
        external_id: str,
        requester_id: str,
        subject: str,
        body: str,
        priority: str,
        tags: list[str],
        check_existing: bool = True,
    ) -> str:
        if check_existing:
            existing = self.ticket_find(external_id=external_id)
            if existing:
                return existing
        ticket = {
            "subject": subject,
            "comment": {"body": body, "public": False},
            "priority": priority,
            "external_id": external_id,
            "tags": tags,
            "requester_id": int(requester_id) if requester_id.isdigit() else requester_id,
        }
        response = self._call("POST", "/api/v2/tickets.json", {"ticket": ticket})
        return str(response.body["ticket"]["id"])

    def ticket_solve(self, *, ticket_id: str, note: str) -> None:
        self._call(
            "PUT",
            f"/api/v2/tickets/{ticket_id}.json",
            {"ticket": {"status": "solved", "comment": {"body": note, "public": False}}},
        )
