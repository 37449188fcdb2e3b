"""The CRM adapter interface. Implementations raise delivery.errors classes only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from delivery.errors import PermanentError


@dataclass(frozen=True)
class UpsertResult:
    contact_id: str  # "" when the CRM keeps no ids (the logging CRM)
    created: bool
    matched_by: str  # "stored_id", "stable_key", "email", "created", "logged"


class ContactConflict(PermanentError):
    """More than one CRM contact matches the customer: a person decides, nothing is
    merged blindly."""

    def __init__(self, contact_ids: list[str]) -> None:
        self.contact_ids = contact_ids
        super().__init__(
            f"{len(contact_ids)} CRM contacts match: {', '.join(contact_ids)}",
            user_message="several CRM contacts match this customer",
        )


class EmailTaken(PermanentError):
    """An update changed the email to one another CRM contact owns (HubSpot's 409): the
    sync marks the customer for review and sends the update without the email."""

    def __init__(self, email: str, owner_id: str) -> None:
        self.email = email
        self.owner_id = owner_id
        super().__init__(
            f"the email {email} belongs to CRM contact {owner_id or '(unnamed)'}",
            user_message="another CRM contact has this email",
        )


class CRMAdapter(Protocol):
    name: str

    def contact_upsert(
        self,
        *,
        contact_id: str | None,
        stable_key: str,
        email: str,
        properties: dict[str, str],
        update: dict[str, str] | None = None,
    ) -> UpsertResult:
        """Update the contact with ``contact_id``; without one (or when it is gone),
        find it by the stable key and the email, and create it only when none matches.
        A create sends ``properties``; an update sends ``update`` (default: the same),
        and raises EmailTaken when it changes the email to another contact's."""

    def contact_set_lifecycle(
        self,
        *,
        contact_id: str,
        stage: str | None,
        tags: tuple[str, ...],
        properties: dict[str, str] | None = None,
    ) -> None:
        """Set the lifecycle stage (None: leave it), the tags and any other properties."""

    def note_add(self, *, contact_id: str, body: str) -> str:
        """Add a timeline note to the contact; returns the note's id."""

    def contact_erase(self, *, contact_id: str) -> None:
        """Delete the contact for good (GDPR); a contact already gone is success."""
