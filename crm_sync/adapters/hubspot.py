"""HubSpot CRM over plain HTTP: CRM v3 objects API (contacts create, update, search) and
notes with a contact association.

Plain HTTP rather than ``hubspot-api-client``: we use four endpoints, and owning the
request lets one module (delivery/http.py) apply the shared rate limiter, honour
``Retry-After`` and classify every answer the same way for every vendor. The generated
SDK retries on its own and wraps errors in its own exception tree, which would hide 429s
from the limiter. Authentication is a private-app token (``Authorization: Bearer``).
"""

from __future__ import annotations

import re
from typing import Any

from django.utils import timezone

from crm_sync.adapters.base import ContactConflict, UpsertResult
from crm_sync.lifecycle import STABLE_KEY_PROPERTY, TAGS_PROPERTY
from delivery import http
from delivery.errors import RetryableError

VENDOR = "hubspot"
CONTACTS = "/crm/v3/objects/contacts"
# HubSpot-defined association type: note -> contact.
NOTE_TO_CONTACT = 202
_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")


class HubSpotCRM:
    name = "HubSpot"

    def __init__(self, *, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    def _call(
        self, method: str, path: str, payload: Any = None, ok_statuses: tuple[int, ...] = ()
    ) -> http.Response:
        return http.request(
            VENDOR,
            method,
            self.base_url + path,
            headers=self.headers,
            payload=payload,
            ok_statuses=ok_statuses,
        )

    def _search(self, *, stable_key: str, email: str) -> list[str]:
        groups = [
            {
                "filters": [
                    {"propertyName": STABLE_KEY_PROPERTY, "operator": "EQ", "value": stable_key}
                ]
            }
        ]
        if email:
            groups.append(
                {"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}
            )
        body = {
            "filterGroups": groups,
            "properties": ["email", STABLE_KEY_PROPERTY],
            "limit": 10,
            "sorts": [],
            "after": "0",
        }
        response = self._call("POST", f"{CONTACTS}/search", body)
        results = (response.body or {}).get("results") or []
        return sorted({str(r["id"]) for r in results if r.get("id")}, key=lambda i: (len(i), i))

    def _update(self, contact_id: str, properties: dict[str, str]) -> bool:
        """PATCH the contact; False when it no longer exists (deleted in HubSpot)."""
        response = self._call(
            "PATCH", f"{CONTACTS}/{contact_id}", {"properties": properties}, ok_statuses=(404,)
        )
        return response.status != 404

    def contact_upsert(
        self, *, contact_id: str | None, stable_key: str, email: str, properties: dict[str, str]
    ) -> UpsertResult:
        if contact_id and self._update(contact_id, properties):
            return UpsertResult(contact_id=contact_id, created=False, matched_by="stored_id")
        found = self._search(stable_key=stable_key, email=email)
        if len(found) > 1:
            raise ContactConflict(found)
        if found:
            if not self._update(found[0], properties):
                raise RetryableError(
                    f"HubSpot contact {found[0]} vanished between search and update"
                )
            return UpsertResult(contact_id=found[0], created=False, matched_by="search")
        response = self._call(
            "POST", CONTACTS, {"properties": properties, "associations": []}, ok_statuses=(409,)
        )
        if response.status == 409:
            # Created meanwhile (search is eventually consistent): HubSpot names it.
            match = _EXISTING_ID.search(str((response.body or {}).get("message", "")))
            if not match:
                raise RetryableError("HubSpot says the contact exists but not which one")
            self._update(match.group(1), properties)
            return UpsertResult(contact_id=match.group(1), created=False, matched_by="conflict_409")
        return UpsertResult(contact_id=str(response.body["id"]), created=True, matched_by="created")

    def contact_set_lifecycle(
        self,
        *,
        contact_id: str,
        stage: str | None,
        tags: tuple[str, ...],
        properties: dict[str, str] | None = None,
    ) -> None:
        props = dict(properties or {})
        props[TAGS_PROPERTY] = ";".join(tags)
        if stage:
            props["lifecyclestage"] = stage
        if not self._update(contact_id, props):
            raise RetryableError(f"HubSpot contact {contact_id} not found")

    def contact_erase(self, *, contact_id: str) -> None:
        """HubSpot's GDPR delete: the contact and its associated content, permanently
        (``POST /crm/v3/objects/contacts/gdpr-delete``, 204). Gone already (404) is done."""
        self._call("POST", f"{CONTACTS}/gdpr-delete", {"objectId": contact_id}, ok_statuses=(404,))

    def note_add(self, *, contact_id: str, body: str) -> str:
        payload = {
            "properties": {"hs_timestamp": timezone.now().isoformat(), "hs_note_body": body},
            "associations": [
                {
                    "to": {"id": contact_id},
                    "types": [
                        {
                            "associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": NOTE_TO_CONTACT,
                        }
                    ],
                }
            ],
        }
        response = self._call("POST", "/crm/v3/objects/notes", payload)
        return str((response.body or {}).get("id", ""))
