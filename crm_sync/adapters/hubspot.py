"""HubSpot CRM over plain HTTP: CRM v3 objects API (contacts create, update, search) and
notes with a contact association.

Plain HTTP rather than ``hubspot-api-client``: we use four endpoints, and owning the
request lets one module (delivery/http.py) apply the shared rate limiter, honour
``Retry-After`` and classify every answer the same way for every vendor. The generated
SDK retries on its own and wraps errors in its own exception tree, which would hide 429s
from the limiter. Authentication is a private-app token (``Authorization: Bearer``).

How HubSpot answers, and what this adapter does about it:

- search has its own limit (4/s per token): searches take a slot of the
  ``hubspot_search`` bucket too;
- a backward lifecycle stage is ignored silently: the PATCH answer shows the stage the
  contact kept, and a move that went backwards (crm_sync/lifecycle.py ``is_backward``)
  is sent again as clear-then-set;
- an update carries only the properties Switchboard owns; a 409 on an update that
  changes the email (another contact owns it) is ``EmailTaken``;
- a 400 naming a property that does not exist (``PROPERTY_DOESNT_EXIST``) or a value
  outside its options (``INVALID_OPTION``) is a setup problem of the account, the same
  for every row: a ``ConfigurationError`` (the channel pauses with one alert) whose
  message says what to create in HubSpot.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.utils import timezone

from crm_sync.adapters.base import ContactConflict, EmailTaken, UpsertResult
from crm_sync.lifecycle import (
    PROPERTY_SETUP,
    STABLE_KEY_PROPERTY,
    STAGE_PROPERTY,
    TAGS_PROPERTY,
    is_backward,
)
from delivery import http
from delivery.errors import ConfigurationError, PermanentError, RetryableError

VENDOR = "hubspot"
CONTACTS = "/crm/v3/objects/contacts"
SEARCH_BUCKET = "hubspot_search"
# HubSpot-defined association type: note -> contact.
NOTE_TO_CONTACT = 202
_EXISTING_ID = re.compile(r"Existing ID:\s*(\d+)")
_INVALID_PREFIX = "Property values were not valid:"
SETUP_ERRORS = ("PROPERTY_DOESNT_EXIST", "INVALID_OPTION")


def setup_problems(body: Any) -> list[dict[str, str]]:
    """The ``PROPERTY_DOESNT_EXIST`` / ``INVALID_OPTION`` entries of a HubSpot 400, which
    lists them as JSON inside ``message`` ("Property values were not valid: [...]") and,
    in newer answers, under ``errors`` (``code``, ``context.propertyName``)."""
    if not isinstance(body, dict):
        return []
    found: list[dict[str, str]] = []
    message = str(body.get("message") or "")
    if _INVALID_PREFIX in message:
        try:
            entries = json.loads(message.split(_INVALID_PREFIX, 1)[1].strip())
        except ValueError:
            entries = []
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and entry.get("error") in SETUP_ERRORS:
                found.append(
                    {
                        "error": str(entry["error"]),
                        "name": str(entry.get("name") or ""),
                        "message": str(entry.get("message") or ""),
                    }
                )
    for entry in body.get("errors") or []:
        if isinstance(entry, dict) and entry.get("code") in SETUP_ERRORS:
            names = (entry.get("context") or {}).get("propertyName") or [""]
            found.append(
                {
                    "error": str(entry["code"]),
                    "name": str(names[0]),
                    "message": str(entry.get("message") or ""),
                }
            )
    return found


def setup_advice(problems: list[dict[str, str]]) -> str:
    """One sentence per missing property or option: what to create in HubSpot."""
    advice = []
    for problem in problems:
        name = problem["name"] or "(unnamed)"
        if problem["error"] == "PROPERTY_DOESNT_EXIST":
            kind = PROPERTY_SETUP.get(name, "the type README names")
            advice.append(
                f"create the contact property '{name}' ({kind}) in HubSpot "
                "(Settings -> Properties -> Contact)"
            )
        else:
            value = problem["message"].split(" was not one of", 1)[0].strip()
            advice.append(
                f"add the option '{value}' to the contact property '{name}' in HubSpot "
                "(Settings -> Properties -> Contact)"
            )
    return "; ".join(dict.fromkeys(advice))


class HubSpotCRM:
    name = "HubSpot"

    def __init__(self, *, base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {token}"}

    def _call(
        self,
        method: str,
        path: str,
        payload: Any = None,
        ok_statuses: tuple[int, ...] = (),
        bucket: str = "",
    ) -> http.Response:
        try:
            return http.request(
                VENDOR,
                method,
                self.base_url + path,
                headers=self.headers,
                payload=payload,
                ok_statuses=ok_statuses,
                bucket=bucket,
            )
        except PermanentError as exc:
            problems = setup_problems(exc.body) if exc.status == 400 else []
            if problems:
                raise ConfigurationError(
                    exc.developer_message,
                    user_message=f"HubSpot is missing what Switchboard writes: "
                    f"{setup_advice(problems)}",
                    status=exc.status,
                    body=exc.body,
                ) from exc
            raise

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
            "properties": ["email", STABLE_KEY_PROPERTY, STAGE_PROPERTY],
            "limit": 10,
            "sorts": [],
            "after": "0",
        }
        response = self._call("POST", f"{CONTACTS}/search", body, bucket=SEARCH_BUCKET)
        results = (response.body or {}).get("results") or []
        return sorted({str(r["id"]) for r in results if r.get("id")}, key=lambda i: (len(i), i))

    def _patch(self, contact_id: str, properties: dict[str, str]) -> http.Response:
        response = self._call(
            "PATCH",
            f"{CONTACTS}/{contact_id}",
            {"properties": properties},
            ok_statuses=(404, 409),
        )
        if response.status == 409:
            match = _EXISTING_ID.search(str((response.body or {}).get("message", "")))
            raise EmailTaken(properties.get("email", ""), match.group(1) if match else "")
        return response

    def _update(self, contact_id: str, properties: dict[str, str]) -> bool:
        """PATCH the contact; False when it no longer exists (deleted in HubSpot). A stage
        HubSpot kept because ours went backwards is cleared, then set again."""
        response = self._patch(contact_id, properties)
        if response.status == 404:
            return False
        target = properties.get(STAGE_PROPERTY)
        kept = ((response.body or {}).get("properties") or {}).get(STAGE_PROPERTY)
        if target and kept != target and is_backward(kept, target):
            self._patch(contact_id, {STAGE_PROPERTY: ""})
            self._patch(contact_id, {STAGE_PROPERTY: target})
        return True

    def contact_upsert(
        self,
        *,
        contact_id: str | None,
        stable_key: str,
        email: str,
        properties: dict[str, str],
        update: dict[str, str] | None = None,
    ) -> UpsertResult:
        changes = properties if update is None else update
        if contact_id and self._update(contact_id, changes):
            return UpsertResult(contact_id=contact_id, created=False, matched_by="stored_id")
        found = self._search(stable_key=stable_key, email=email)
        if len(found) > 1:
            raise ContactConflict(found)
        if found:
            if not self._update(found[0], changes):
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
            self._update(match.group(1), changes)
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
