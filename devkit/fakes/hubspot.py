"""A fake HubSpot CRM v3 (contacts create, PATCH, search; notes), following HubSpot's
CRM contacts v3 OpenAPI description: SimplePublicObject answers, the Error
shape (status, message, correlationId, category), 409 "Contact already exists. Existing
ID: n" on a duplicate email (create, or a PATCH to an email another contact owns), 404
for an unknown contact, 400 for invalid properties, 401 without the private-app token,
and 429 (policyName) when told to.

What HubSpot does that a naive client misses:

- plan limits (``FakeHubSpot(plan="starter")``): 100 requests per rolling 10 s for a
  Free/Starter private app (190 on Professional/Enterprise), and 4 requests/s on the
  search endpoint; a 429 then carries ``policyName`` (``TEN_SECONDLY_ROLLING``,
  ``SECONDLY``) and **no** ``Retry-After``;
- ``lifecyclestage`` only moves forward: a value earlier in the stage order than the
  contact's is ignored silently (200, old value kept) unless the property was cleared
  first (set to ``""``);
- properties must exist (``properties``: name -> allowed options or None): an unknown
  one is a 400 ``PROPERTY_DOESNT_EXIST``, a value outside an enumeration's options a 400
  ``INVALID_OPTION``, both in HubSpot's "Property values were not valid" body.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from typing import Any

from devkit.fakes.base import FakeVendor, Limit, correlation_id

CONTACTS = "/crm/v3/objects/contacts"
SEARCH = f"{CONTACTS}/search"
# HubSpot's default lifecycle stages, in their only-forward order.
STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
# Every tag of crm_sync/lifecycle.py, as the multiple-checkbox options of switchboard_tags.
TAGS = (
    "checkout_incomplete",
    "checkout_abandoned",
    "trial",
    "paying",
    "payment_failed",
    "unpaid",
    "paused",
    "churned",
    "refunded",
    "disputed",
    "needs_review",
)
# Requests per rolling 10 s of a private app, by plan (HubSpot's API usage guidelines).
PLANS = {"free": 100, "starter": 100, "professional": 190, "enterprise": 190}


def default_properties() -> dict[str, tuple[str, ...] | None]:
    """The contact properties of an account set up as README says (HubSpot's own plus
    the switchboard_* ones); None: free text."""
    return {
        "email": None,
        "firstname": None,
        "lastname": None,
        "lifecyclestage": STAGES,
        "hs_object_id": None,
        "switchboard_customer_id": None,
        "switchboard_status": None,
        "switchboard_plan": None,
        "switchboard_tags": TAGS,
    }


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class FakeHubSpot(FakeVendor):
    name = "hubspot"

    def __init__(
        self, token: str = "hubspot-test-token", *, plan: str = "", first_id: int = 501
    ) -> None:
        super().__init__()
        self.token = token
        self.properties = default_properties()
        if plan:
            self.limit(PLANS[plan], 10.0, policy="TEN_SECONDLY_ROLLING")
            self.limit(4, 1.0, path=SEARCH, policy="SECONDLY")
        self.contacts: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, dict[str, Any]] = {}
        self.reject_emails: set[str] = set()  # emails answered with a 400 validation error
        self.gdpr_deleted: list[str] = []  # contact ids removed by a GDPR delete
        self._ids = itertools.count(first_id)  # another first id per run of a kept database

    def authorized(self, headers: Any) -> bool:
        return headers.get("Authorization") == f"Bearer {self.token}"

    def error_body(self, status: int) -> dict[str, Any]:
        category = {
            401: "INVALID_AUTHENTICATION",
            403: "MISSING_SCOPES",
            429: "RATE_LIMITS",
            404: "OBJECT_NOT_FOUND",
        }.get(status, "VALIDATION_ERROR" if status < 500 else "INTERNAL_ERROR")
        body = {
            "status": "error",
            "message": f"fake HubSpot: {category.lower()}",
            "correlationId": correlation_id(),
            "category": category,
        }
        if status == 429:
            body.update(
                {
                    "errorType": "RATE_LIMIT",
                    "policyName": "SECONDLY",
                    "message": "You have reached your secondly limit.",
                }
            )
        return body

    def limit_answer(self, limit: Limit, now: float) -> tuple[int, Any, dict]:
        """HubSpot's 429: the policy in the body, no Retry-After."""
        name = limit.policy or "TEN_SECONDLY_ROLLING"
        body = {
            **self.error_body(429),
            "message": f"You have reached your {name.lower()} limit.",
            "policyName": name,
        }
        headers = {}
        if name == "TEN_SECONDLY_ROLLING":
            headers = {
                "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
                "X-HubSpot-RateLimit-Max": str(limit.count),
                "X-HubSpot-RateLimit-Remaining": "0",
            }
        return 429, body, headers

    def _object(self, contact: dict[str, Any]) -> dict[str, Any]:
        return {**contact, "properties": dict(contact["properties"])}

    def by_key(self, key: str) -> list[dict[str, Any]]:
        return [
            c
            for c in self.contacts.values()
            if c["properties"].get("switchboard_customer_id") == key
        ]

    def add_contact(self, properties: dict[str, str]) -> dict[str, Any]:
        contact_id = str(next(self._ids))
        contact = {
            "id": contact_id,
            "properties": {**properties, "hs_object_id": contact_id},
            "createdAt": _now(),
            "updatedAt": _now(),
            "archived": False,
        }
        self.contacts[contact_id] = contact
        return contact

    def _validate(self, properties: Any) -> dict[str, Any] | None:
        if not isinstance(properties, dict):
            return {**self.error_body(400), "message": "Invalid input JSON: properties"}
        invalid = []
        for name, value in properties.items():
            if name not in self.properties:
                invalid.append(
                    {
                        "isValid": False,
                        "message": f'Property "{name}" does not exist',
                        "error": "PROPERTY_DOESNT_EXIST",
                        "name": name,
                    }
                )
                continue
            options = self.properties[name]
            for part in str(value or "").split(";") if options else ():
                if part and part not in options:
                    invalid.append(
                        {
                            "isValid": False,
                            "message": f"{part} was not one of the allowed options: "
                            f"[{', '.join(options)}]",
                            "error": "INVALID_OPTION",
                            "name": name,
                        }
                    )
        if invalid:
            return {
                **self.error_body(400),
                "message": f"Property values were not valid: {json.dumps(invalid)}",
            }
        email = properties.get("email", "")
        if email and ("@" not in email or email in self.reject_emails):
            return {
                **self.error_body(400),
                "message": f"Property values were not valid: email {email!r} is invalid",
                "errors": [{"message": "INVALID_EMAIL", "code": "INVALID_EMAIL"}],
            }
        return None

    def route(self, method: str, path: str, query: dict, body: Any) -> tuple[int, Any, dict]:
        if method == "POST" and path == CONTACTS:
            properties = (body or {}).get("properties")
            error = self._validate(properties)
            if error:
                return 400, error, {}
            email = properties.get("email")
            for contact in self.contacts.values():
                if email and contact["properties"].get("email") == email:
                    return (
                        409,
                        {
                            **self.error_body(409),
                            "category": "CONFLICT",
                            "message": f"Contact already exists. Existing ID: {contact['id']}",
                        },
                        {},
                    )
            return 201, self._object(self.add_contact(properties)), {}
        if method == "POST" and path == f"{CONTACTS}/search":
            groups = (body or {}).get("filterGroups") or []
            found = [
                c
                for c in self.contacts.values()
                if any(
                    all(
                        f.get("operator") == "EQ"
                        and c["properties"].get(f["propertyName"]) == f.get("value")
                        for f in group.get("filters", [])
                    )
                    for group in groups
                )
            ]
            return 200, {"total": len(found), "results": [self._object(c) for c in found]}, {}
        if path.startswith(f"{CONTACTS}/") and method == "PATCH":
            contact = self.contacts.get(path.rsplit("/", 1)[1])
            if contact is None:
                return 404, {**self.error_body(404), "message": "resource not found"}, {}
            properties = (body or {}).get("properties")
            error = self._validate(properties)
            if error:
                return 400, error, {}
            email = properties.get("email")
            for other in self.contacts.values():
                if email and other is not contact and other["properties"].get("email") == email:
                    return (
                        409,
                        {
                            **self.error_body(409),
                            "category": "CONFLICT",
                            "message": f"Contact already exists. Existing ID: {other['id']}",
                        },
                        {},
                    )
            properties = dict(properties)
            stage, current = (
                properties.get("lifecyclestage"),
                contact["properties"].get("lifecyclestage"),
            )
            if stage and current in STAGES and STAGES.index(stage) < STAGES.index(current):
                del properties["lifecyclestage"]  # backwards: ignored unless cleared first
            contact["properties"].update(properties)
            contact["updatedAt"] = _now()
            return 200, self._object(contact), {}
        if method == "POST" and path == f"{CONTACTS}/gdpr-delete":
            # The documented GDPR delete: by id (or by email with idProperty=email); the
            # contact and its notes go for good; 204 with no body.
            data = body or {}
            if not data.get("objectId"):
                return 400, {**self.error_body(400), "message": "objectId is required"}, {}
            if data.get("idProperty") == "email":
                found = [
                    c
                    for c in self.contacts.values()
                    if c["properties"].get("email") == data["objectId"]
                ]
                contact = found[0] if found else None
            else:
                contact = self.contacts.get(str(data["objectId"]))
            if contact is None:
                return 404, {**self.error_body(404), "message": "resource not found"}, {}
            del self.contacts[contact["id"]]
            self.gdpr_deleted.append(contact["id"])
            return 204, None, {}
        if method == "POST" and path == "/crm/v3/objects/notes":
            note_id = str(next(self._ids))
            self.notes[note_id] = {"id": note_id, **(body or {})}
            return (
                201,
                {
                    "id": note_id,
                    "properties": (body or {}).get("properties", {}),
                    "createdAt": _now(),
                    "updatedAt": _now(),
                    "archived": False,
                },
                {},
            )
        return 404, {**self.error_body(404), "message": f"no route {method} {path}"}, {}
