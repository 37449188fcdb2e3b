"""Zendesk Support over plain HTTP: Users (search, create, identities), Groups
(memberships) and Tickets (list by external_id, create, update).

- **Idempotent ticket creation.** Our situation key is the ticket's ``external_id`` and
  its ``Idempotency-Key``: Zendesk answers a repeated create with the same key and body
  with the ticket it already made (for two hours). Past that, a retry looks the ticket
  up by ``external_id`` before creating it, so a lost answer never opens a second
  ticket. A first attempt skips the lookup: nothing can exist yet, and it saves a
  request against the rate limit.
- **Groups.** A ticket is created in its queue's group (``ZENDESK_GROUP_IDS``), so a
  private queue is only seen by that group's agents when their role is restricted to
  their groups' tickets.
- **Solving needs an assignee.** Zendesk refuses (422) to solve a ticket nobody holds
  unless the account auto-assigns on solve. Then the ticket is assigned to
  ``ZENDESK_SOLVE_ASSIGNEE_ID``, else to a member of its group (the default membership
  first), and solved again.
- **The requester is never demoted.** ``users/create_or_update`` matches on email too and
  would apply ``role: end-user`` to an agent who shares the customer's email. Instead:
  the user with our ``external_id``; else a new end-user; if Zendesk says the email is
  taken, that user as they are (role and name untouched).
- **Email changes** update the user's primary email identity (Zendesk keeps emails as
  identities; a user's ``email`` field cannot be rewritten), or make an identity that
  already has the new address primary.

Authentication is an API token: ``Basic base64("{email}/token:{token}")``. Requests go
through delivery/http.py (shared rate limiter, Retry-After, error classes).
"""

from __future__ import annotations

import base64
import urllib.parse
from typing import Any

from delivery import http
from delivery.errors import ConfigurationError, PermanentError

VENDOR = "zendesk"


def _details(body: Any) -> dict[str, Any]:
    return (body or {}).get("details") or {} if isinstance(body, dict) else {}


class ZendeskHelpdesk:
    name = "Zendesk"
    keeps_tickets = True

    def __init__(
        self,
        *,
        base_url: str,
        email: str,
        token: str,
        group_ids: dict[str, int] | None = None,
        solve_assignee_id: int = 0,
    ) -> None:
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
        self.group_ids = dict(group_ids or {})
        self.solve_assignee_id = solve_assignee_id

    def _call(
        self,
        method: str,
        path: str,
        payload: Any = None,
        *,
        ok_statuses: tuple[int, ...] = (),
        headers: dict[str, str] | None = None,
    ) -> http.Response:
        return http.request(
            VENDOR,
            method,
            self.base_url + path,
            headers={**self.headers, **(headers or {})},
            payload=payload,
            ok_statuses=ok_statuses,
        )

    # --- users ------------------------------------------------------------------------

    def _search_users(self, **params: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode(params)
        response = self._call("GET", f"/api/v2/users/search.json?{query}")
        return list((response.body or {}).get("users") or [])

    def user_upsert(self, *, external_id: str, email: str, name: str) -> str:
        found = self._search_users(external_id=external_id)
        if found:
            return str(found[0]["id"])
        user: dict[str, Any] = {
            "external_id": external_id,
            "name": name or email or external_id,
            "role": "end-user",  # only ever sent for a user we create
        }
        if email:
            user["email"] = email
        response = self._call("POST", "/api/v2/users.json", {"user": user}, ok_statuses=(422,))
        if response.status != 422:
            return str(response.body["user"]["id"])
        if email and "email" in _details(response.body):
            # Someone at Zendesk has this email already (maybe an agent): use them as
            # they are rather than rewriting their role, name or external id.
            taken = self._search_users(query=f"email:{email}")
            if taken:
                return str(taken[0]["id"])
        raise PermanentError(
            f"zendesk POST users answered 422: {response.body}",
            user_message=f"Zendesk refused the requester: {response.body}",
            status=422,
            body=response.body,
        )

    def user_email_update(self, *, user_id: str, email: str) -> str:
        """Make ``email`` the user's primary email; returns what was done."""
        response = self._call("GET", f"/api/v2/users/{user_id}/identities.json")
        identities = [
            i for i in (response.body or {}).get("identities") or [] if i.get("type") == "email"
        ]
        same = next((i for i in identities if i.get("value") == email), None)
        if same is not None:
            if same.get("primary"):
                return "already primary"
            self._call("PUT", f"/api/v2/users/{user_id}/identities/{same['id']}/make_primary")
            return "existing identity made primary"
        primary = next((i for i in identities if i.get("primary")), None)
        if primary is None:
            self._call(
                "POST",
                f"/api/v2/users/{user_id}/identities.json",
                {"identity": {"type": "email", "value": email, "primary": True}},
            )
            return "identity added"
        self._call(
            "PUT",
            f"/api/v2/users/{user_id}/identities/{primary['id']}.json",
            {"identity": {"value": email}},
        )
        return "primary identity updated"

    # --- tickets ----------------------------------------------------------------------

    def group_for(self, queue: str) -> int | None:
        return self.group_ids.get(queue)

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
        group_id: int | None = None,
    ) -> str:
        if check_existing:
            existing = self.ticket_find(external_id=external_id)
            if existing:
                return existing
        ticket: dict[str, Any] = {
            "subject": subject,
            "comment": {"body": body, "public": False},
            "priority": priority,
            "external_id": external_id,
            "tags": tags,
            "requester_id": int(requester_id) if requester_id.isdigit() else requester_id,
        }
        if group_id:
            ticket["group_id"] = group_id
        response = self._call(
            "POST",
            "/api/v2/tickets.json",
            {"ticket": ticket},
            headers={"Idempotency-Key": external_id[:255]},
        )
        return str(response.body["ticket"]["id"])

    def _solve_assignee(self, group_id: int | None) -> int:
        if self.solve_assignee_id:
            return self.solve_assignee_id
        if group_id:
            response = self._call("GET", f"/api/v2/groups/{group_id}/memberships.json")
            members = (response.body or {}).get("group_memberships") or []
            members.sort(key=lambda m: not m.get("default"))
            if members:
                return int(members[0]["user_id"])
        return 0

    def ticket_solve(self, *, ticket_id: str, note: str, group_id: int | None = None) -> None:
        solve = {"status": "solved", "comment": {"body": note, "public": False}}
        path = f"/api/v2/tickets/{ticket_id}.json"
        response = self._call("PUT", path, {"ticket": solve}, ok_statuses=(422,))
        if response.status != 422:
            return
        if "assignee" not in _details(response.body):
            raise PermanentError(
                f"zendesk PUT ticket {ticket_id} answered 422: {response.body}",
                user_message=f"Zendesk refused to solve the ticket: {response.body}",
                status=422,
                body=response.body,
            )
        assignee = self._solve_assignee(group_id)
        if not assignee:
            raise ConfigurationError(
                f"zendesk refuses to solve ticket {ticket_id} without an assignee, and "
                "there is no ZENDESK_SOLVE_ASSIGNEE_ID nor a group member to assign",
                user_message="Zendesk needs an assignee to solve tickets: set "
                "ZENDESK_SOLVE_ASSIGNEE_ID to an agent's id (or ZENDESK_GROUP_IDS to groups "
                "with members)",
            )
        self._call("PUT", path, {"ticket": {**solve, "assignee_id": assignee}})
