"""Helpdesk adapters: the interface, Zendesk, and a local-only helpdesk.

``get_helpdesk()`` picks Zendesk when ``ZENDESK_TOKEN`` is set, else the local helpdesk
(tickets live in Switchboard only); support.apps says which at start-up. A token without
a base URL or agent email is a configuration error (the channel pauses), not a silent
fallback.
"""

from __future__ import annotations

from django.conf import settings

from support.adapters.base import HelpdeskAdapter

__all__ = ["HelpdeskAdapter", "get_helpdesk"]


def get_helpdesk() -> HelpdeskAdapter:
    if settings.ZENDESK_TOKEN:
        from support.adapters.zendesk import ZendeskHelpdesk

        return ZendeskHelpdesk(
            base_url=settings.ZENDESK_BASE_URL,
            email=settings.ZENDESK_EMAIL,
            token=settings.ZENDESK_TOKEN,
            group_ids=settings.ZENDESK_GROUP_IDS,
            solve_assignee_id=settings.ZENDESK_SOLVE_ASSIGNEE_ID,
        )
    from support.adapters.local import LocalHelpdesk

    return LocalHelpdesk()
