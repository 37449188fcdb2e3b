"""A fake Zendesk Support API: users (search by external_id or ``email:``, create,
create_or_update by external_id else email, identities), groups and their memberships,
tickets list filtered by external_id, create and update; Basic auth with an API token
(``{email}/token:{token}``); 429 answers carry Retry-After and X-Rate-Limit headers.

What Zendesk does that a naive client misses:

- plan limits (``FakeZendesk(plan="team")``): 200 requests/min (``professional`` 400,
  ``enterprise`` 700), then 429 with ``Retry-After`` in seconds;
- solving a ticket nobody is assigned to is refused: 422 RecordInvalid with
  ``details.assignee`` (unless ``auto_assign_on_solve``, an account setting);
- ``create_or_update`` matches on email too and applies the ``role`` sent, so an agent
  who shares a customer's email is demoted by ``role: end-user``; ``POST users`` answers
  422 (``details.email`` DuplicateValue) when the email is taken;
- ``Idempotency-Key`` on a create: the same key and body within two hours answer the
  first result again (``x-idempotency-lookup: hit``); the same key with another body is a
  400 IdempotentRequestError.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from datetime import UTC, datetime
from typing import Any

from devkit.fakes.base import FakeVendor, Limit

PLANS = {"team": 200, "growth": 400, "professional": 400, "enterprise": 700}
IDEMPOTENCY_SECONDS = 2 * 3600


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeZendesk(FakeVendor):
    name = "zendesk"

    def __init__(
        self,
        email: str = "agent@example.test",
        token: str = "zendesk-test-token",
        *,
        plan: str = "",
        first_id: int = 9001,
    ) -> None:
        super().__init__()
        self.plan_limit = PLANS[plan] if plan else 0
        if plan:
            self.limit(self.plan_limit, 60.0)
        self.groups: dict[int, dict[str, Any]] = {}
        self.memberships: list[dict[str, Any]] = []
        self.auto_assign_on_solve = False
        self.list_lag = False  # the tickets list does not show new tickets yet
        self.idempotency: dict[str, tuple[float, str, int, Any]] = {}
        self.credentials = base64.b64encode(f"{email}/token:{token}".encode()).decode()
        self.users: dict[int, dict[str, Any]] = {}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.created_at: dict[int, float] = {}  # ticket id -> time.time() when created
        self.deleted_users: dict[int, dict[str, Any]] = {}  # soft-deleted, not yet purged
        self.purged_users: list[int] = []  # permanently deleted (GDPR)
        self._ids = itertools.count(first_id)  # another first id per run of a kept database

    def limit_answer(self, limit: Limit, now: float) -> tuple[int, Any, dict]:
        return (
            429,
            self.error_body(429),
            {
                "Retry-After": str(max(1, round(limit.free_in(now) + 0.5))),
                "X-Rate-Limit": str(limit.count),
                "X-Rate-Limit-Remaining": "0",
            },
        )

    def add_user(self, *, name: str, email: str = "", role: str = "end-user", **extra: Any) -> dict:
        user_id = next(self._ids)
        user = {
            "id": user_id,
            "url": f"/api/v2/users/{user_id}.json",
            "created_at": _now(),
            "name": name,
            "role": role,
            "email": email or None,
            "identities": [],
            **extra,
        }
        if email:
            user["identities"].append(
                {"id": next(self._ids), "type": "email", "value": email, "primary": True}
            )
        self.users[user_id] = user
        return user

    def add_group(self, name: str, *, members: tuple[int, ...] = ()) -> int:
        group_id = next(self._ids)
        self.groups[group_id] = {"id": group_id, "name": name}
        for n, user_id in enumerate(members):
            self.memberships.append(
                {"id": next(self._ids), "user_id": user_id, "group_id": group_id, "default": n == 0}
            )
        return group_id

    def _public(self, user: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in user.items() if k != "identities"}

    def _sync_email(self, user: dict[str, Any]) -> None:
        primary = next((i for i in user["identities"] if i.get("primary")), None)
        user["email"] = primary["value"] if primary else None

    def authorized(self, headers: Any) -> bool:
        return headers.get("Authorization") == f"Basic {self.credentials}"

    def error_body(self, status: int) -> dict[str, Any]:
        if status == 401:
            return {"error": "Couldn't authenticate you"}
        if status == 429:
            return {
                "error": "APIRateLimitExceeded",
                "description": "Number of allowed API requests per minute exceeded",
            }
        if status >= 500:
            return {"error": "InternalError", "description": "fake Zendesk failure"}
        return {"error": "RecordInvalid", "description": "Record validation errors"}

    def by_external_id(self, external_id: str) -> list[dict[str, Any]]:
        return [t for t in self.tickets.values() if t.get("external_id") == external_id]

    def route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any, dict]:
        limit = self.plan_limit or 700
        headers = {"X-Rate-Limit": str(limit), "X-Rate-Limit-Remaining": str(limit - 1)}
        answer = self._route_more(method, path, query, body, headers)
        if answer is not None:
            return answer
        if method == "POST" and path == "/api/v2/users/create_or_update.json":
            data = (body or {}).get("user") or {}
            if not data.get("name"):
                return (
                    422,
                    {
                        **self.error_body(422),
                        "details": {"name": [{"description": "Name: is too short"}]},
                    },
                    headers,
                )
            user = next(
                (
                    u
                    for u in self.users.values()
                    if data.get("external_id") and u.get("external_id") == data["external_id"]
                ),
                None,
            )
            if user is None and data.get("email"):
                user = next(
                    (u for u in self.users.values() if u.get("email") == data["email"]), None
                )
            if user is not None:
                user.update(data)  # the role sent too: an agent becomes an end-user
                return 200, {"user": self._public(user)}, headers
            user = self.add_user(**data)
            return 201, {"user": self._public(user)}, headers
        if method == "GET" and path == "/api/v2/tickets.json":
            external_id = (query.get("external_id") or [None])[0]
            found = self.by_external_id(external_id) if external_id else list(self.tickets.values())
            if self.list_lag:
                found = []
            return (
                200,
                {"tickets": found, "count": len(found), "next_page": None, "previous_page": None},
                headers,
            )
        if method == "POST" and path == "/api/v2/tickets.json":
            key = self.request_headers.get("Idempotency-Key") if self.request_headers else None
            fingerprint = json.dumps(body, sort_keys=True)
            if key and key in self.idempotency:
                at, seen, status, answer = self.idempotency[key]
                if time.time() - at < IDEMPOTENCY_SECONDS:
                    if seen != fingerprint:
                        return (
                            400,
                            {
                                "error": "IdempotentRequestError",
                                "description": "Request parameters do not match the "
                                "original request for this idempotency key",
                            },
                            headers,
                        )
                    return status, answer, {**headers, "x-idempotency-lookup": "hit"}
            status, answer, out = self._ticket_create(body, headers)
            if key and status == 201:
                self.idempotency[key] = (time.time(), fingerprint, status, answer)
                out = {**out, "x-idempotency-lookup": "miss"}
            return status, answer, out
        return self._route_tickets(method, path, body, headers)

    def _ticket_create(self, body: Any, headers: dict) -> tuple[int, Any, dict]:
        data = dict((body or {}).get("ticket") or {})
        if data.get("group_id") and data["group_id"] not in self.groups:
            return (
                422,
                {**self.error_body(422), "details": {"group": [{"description": "invalid"}]}},
                headers,
            )
        if not (data.get("comment") or {}).get("body"):
            return (
                422,
                {
                    **self.error_body(422),
                    "details": {"base": [{"description": "comment required"}]},
                },
                headers,
            )
        ticket_id = next(self._ids)
        comment = data.pop("comment")
        ticket = {
            "id": ticket_id,
            "url": f"/api/v2/tickets/{ticket_id}.json",
            "status": "new",
            "created_at": _now(),
            "updated_at": _now(),
            "comments": [comment],
            "description": comment["body"],
            **data,
        }
        self.tickets[ticket_id] = ticket
        self.created_at[ticket_id] = time.time()
        return 201, {"ticket": ticket}, headers

    def _route_tickets(self, method: str, path: str, body: Any, headers: dict) -> tuple:
        if method == "PUT" and path.startswith("/api/v2/tickets/") and path.endswith(".json"):
            ticket = self.tickets.get(int(path.rsplit("/", 1)[1].removesuffix(".json")))
            if ticket is None:
                return 404, {"error": "RecordNotFound", "description": "Not found"}, headers
            data = dict((body or {}).get("ticket") or {})
            assignee = data.get("assignee_id", ticket.get("assignee_id"))
            if data.get("status") == "solved" and not assignee:
                if not self.auto_assign_on_solve:
                    return (
                        422,
                        {
                            **self.error_body(422),
                            "details": {
                                "assignee": [{"description": "Assignee: is required when solving"}]
                            },
                        },
                        headers,
                    )
                data["assignee_id"] = self.users and next(iter(self.users))
            if data.get("comment"):
                ticket["comments"].append(data.pop("comment"))
            ticket.update(data, updated_at=_now())
            return 200, {"ticket": ticket}, headers
        if method == "DELETE" and path.startswith("/api/v2/users/"):
            # Delete: the user moves to deleted_users (still holding its data).
            user = self.users.pop(int(path.rsplit("/", 1)[1].removesuffix(".json")), None)
            if user is None:
                return 404, {"error": "RecordNotFound", "description": "Not found"}, headers
            self.deleted_users[user["id"]] = {**user, "active": False}
            return 200, {"user": {**user, "active": False}}, headers
        if method == "DELETE" and path.startswith("/api/v2/deleted_users/"):
            # Permanent deletion works only on a deleted user, as documented.
            user_id = int(path.rsplit("/", 1)[1].removesuffix(".json"))
            if user_id in self.users:
                return (
                    422,
                    {
                        "error": "RecordInvalid",
                        "description": "User must be deleted before permanent deletion",
                    },
                    headers,
                )
            if self.deleted_users.pop(user_id, None) is None:
                return 404, {"error": "RecordNotFound", "description": "Not found"}, headers
            self.purged_users.append(user_id)
            return 200, {"deleted_user": {"id": user_id}}, headers
        return 404, {"error": "InvalidEndpoint", "description": f"{method} {path}"}, headers

    def _route_more(
        self, method: str, path: str, query: dict, body: Any, headers: dict
    ) -> tuple[int, Any, dict] | None:
        """Users search and create, identities, group memberships."""
        if method == "GET" and path == "/api/v2/users/search.json":
            external_id = (query.get("external_id") or [""])[0]
            text = (query.get("query") or [""])[0]
            email = text.removeprefix("email:") if text.startswith("email:") else ""
            found = [
                self._public(u)
                for u in self.users.values()
                if (external_id and u.get("external_id") == external_id)
                or (email and any(i["value"] == email for i in u["identities"]))
            ]
            return 200, {"users": found, "count": len(found), "next_page": None}, headers
        if method == "POST" and path == "/api/v2/users.json":
            data = dict((body or {}).get("user") or {})
            email = data.get("email")
            if email and any(
                i["value"] == email for u in self.users.values() for i in u["identities"]
            ):
                return (
                    422,
                    {
                        **self.error_body(422),
                        "details": {
                            "email": [
                                {
                                    "description": f"Email: {email} is already being used "
                                    "by another user",
                                    "error": "DuplicateValue",
                                }
                            ]
                        },
                    },
                    headers,
                )
            return 201, {"user": self._public(self.add_user(**data))}, headers
        parts = path.removesuffix(".json").split("/")
        # /api/v2/users/{id}/identities[/{iid}[/make_primary]]
        if len(parts) >= 6 and parts[3] == "users" and parts[5] == "identities":
            user = self.users.get(int(parts[4]))
            if user is None:
                return 404, {"error": "RecordNotFound", "description": "Not found"}, headers
            if method == "GET" and len(parts) == 6:
                return 200, {"identities": user["identities"]}, headers
            if method == "POST" and len(parts) == 6:
                data = dict((body or {}).get("identity") or {})
                identity = {"id": next(self._ids), "type": data.get("type"), **data}
                if identity.get("primary"):
                    for other in user["identities"]:
                        other["primary"] = False
                user["identities"].append(identity)
                self._sync_email(user)
                return 201, {"identity": identity}, headers
            identity = next((i for i in user["identities"] if str(i["id"]) == parts[6]), None)
            if identity is None:
                return 404, {"error": "RecordNotFound", "description": "Not found"}, headers
            if method == "PUT" and len(parts) == 8 and parts[7] == "make_primary":
                for other in user["identities"]:
                    other["primary"] = other is identity
                self._sync_email(user)
                return 200, {"identities": user["identities"]}, headers
            if method == "PUT" and len(parts) == 7:
                identity.update({"value": ((body or {}).get("identity") or {}).get("value")})
                self._sync_email(user)
                return 200, {"identity": identity}, headers
        # /api/v2/groups/{id}/memberships
        if (
            method == "GET"
            and len(parts) == 6
            and parts[3] == "groups"
            and parts[5] == "memberships"
        ):
            group_id = int(parts[4])
            members = [m for m in self.memberships if m["group_id"] == group_id]
            return 200, {"group_memberships": members, "count": len(members)}, headers
        return None
