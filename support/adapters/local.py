"""The local-only helpdesk: tickets live in Switchboard's console and nowhere else."""

from __future__ import annotations

import logging

logger = logging.getLogger("support.local")


class LocalHelpdesk:
    name = "local helpdesk"
    keeps_tickets = False

    def user_upsert(self, *, external_id: str, email: str, name: str) -> str:
        return ""

    def user_erase(self, *, user_id: str) -> None:
        logger.info("helpdesk (local): user %s erased", user_id)

    def user_email_update(self, *, user_id: str, email: str) -> str:
        return "local helpdesk: nothing to update"

    def group_for(self, queue: str) -> int | None:
        return None

    def ticket_find(self, *, external_id: str) -> str:
        return ""

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
        logger.info("helpdesk (local): ticket %s kept in the console: %s", external_id, subject)
        return ""

    def ticket_solve(self, *, ticket_id: str, note: str, group_id: int | None = None) -> None:
        logger.info("helpdesk (local): ticket solved in the console")
