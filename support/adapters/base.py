"""The helpdesk adapter interface. Implementations raise delivery.errors classes only."""

from __future__ import annotations

from typing import Protocol


class HelpdeskAdapter(Protocol):
    name: str
    keeps_tickets: bool  # False: the local helpdesk has no ids to wait for

    def user_upsert(self, *, external_id: str, email: str, name: str) -> str:
        """Find the requester by our external id, else create them (an existing user
        with that email is used as is, never changed); returns the helpdesk's id."""

    def user_email_update(self, *, user_id: str, email: str) -> str:
        """Make ``email`` the requester's primary email; returns what was done."""

    def group_for(self, queue: str) -> int | None:
        """The helpdesk group of a Switchboard queue, or None when none is configured."""

    def ticket_find(self, *, external_id: str) -> str:
        """The helpdesk id of the ticket with our external id, or ""."""

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
        """Create the ticket (in ``group_id``) unless one with ``external_id`` exists
        (looked up when ``check_existing``: a retry); returns its id."""

    def ticket_solve(self, *, ticket_id: str, note: str, group_id: int | None = None) -> None:
        """Add an internal note and set the ticket solved (assigning it first when the
        helpdesk needs an assignee)."""

    def user_erase(self, *, user_id: str) -> None:
        """Delete the user and their data for good (GDPR); already gone is success."""
