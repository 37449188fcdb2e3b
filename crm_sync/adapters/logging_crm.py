"""A CRM that only logs what it would do: local development without a HubSpot token."""

from __future__ import annotations

import logging

from crm_sync.adapters.base import UpsertResult

logger = logging.getLogger("crm_sync.local")


class LoggingCRM:
    name = "local log"

    def contact_upsert(
        self,
        *,
        contact_id: str | None,
        stable_key: str,
        email: str,
        properties: dict[str, str],
        update: dict[str, str] | None = None,
    ) -> UpsertResult:
        logger.info(
            "CRM (local): upsert contact %s stage=%s tags=%s",
            stable_key,
            properties.get("lifecyclestage", "-"),
            properties.get("switchboard_tags", ""),
        )
        return UpsertResult(contact_id="", created=False, matched_by="logged")

    def contact_set_lifecycle(
        self,
        *,
        contact_id: str,
        stage: str | None,
        tags: tuple[str, ...],
        properties: dict[str, str] | None = None,
    ) -> None:
        logger.info("CRM (local): contact %s stage=%s tags=%s", contact_id, stage, ";".join(tags))

    def contact_erase(self, *, contact_id: str) -> None:
        logger.info("CRM (local): contact %s erased", contact_id)

    def note_add(self, *, contact_id: str, body: str) -> str:
        logger.info("CRM (local): note on contact %s: %s", contact_id, body[:80])
        return ""
