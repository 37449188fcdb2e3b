"""A fake Zendesk Support API: users/create_or_update (by external_id, else email),
tickets list filtered by external_id, create and update; Basic auth with an API token
(``{email}/token:{token}``); 429 answers carry Retry-After and X-Rate-Limit headers."""

from __future__ import annotations

import base64
import itertools
import time
from datetime import UTC, datetime
from typing import Any

from devkit.fakes.base import FakeVendor


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeZendesk(FakeVendor):
    name = "zendesk"

    def __init__(
        self, email: str = "agent@example.test", token: str = "zendesk-test-token"
    ) -> None:
        super().__init__()
        self.credentials = base64.b64encode(f"{email}/token:{token}".encode()).decode()
        self.users: dict[int, dict[str, Any]] = {}
        self.tickets: dict[int, dict[str, Any]] = {}
        self.created_at: dict[int, float] = {}  # ticket id -> time.time() when created
        self.deleted_users: dict[int, dict[str, Any]] = {}  # soft-deleted, not yet purged
        self.purged_users: list[int] = []  # permanently deleted (GDPR)
        self._ids = itertools.count(9001)

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
        headers = {"X-Rate-Limit": "700", "X-Rate-Limit-Remaining": "699"}
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
                user.update(data)
                return 200, {"user": user}, headers
            user_id = next(self._ids)
            user = {
                "id": user_id,
                "url": f"/api/v2/users/{user_id}.json",
                "created_at": _now(),
                **data,
            }
            self.users[user_id] = user
            return 201, {"user": user}, headers
        if method == "GET" and path == "/api/v2/tickets.json":
            external_id = (query.get("external_id") or [None])[0]
            found = self.by_external_id(external_id) if external_id else list(self.tickets.values())
            return (
                200,
                {"tickets": found, "count": len(found), "next_page": None, "previous_page": None},
                headers,
            )
        if method == "POST" and path == "/api/v2/tickets.json":
            data = (body or {}).get("ticket") or {}
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
        if method == "PUT" and path.startswith("/api/v2/tickets/") and path.endswith(".json"):
            ticket = self.tickets.get(int(path.rsplit("/", 1)[1].removesuffix(".json")))
            if ticket is None:
                return 404, {"error": "RecordNotFound", "description": "Not found"}, headers
            data = dict((body or {}).get("ticket") or {})
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
