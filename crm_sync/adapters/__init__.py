"""CRM adapters: the interface, the HubSpot implementation and a logging one.

``get_crm()`` picks HubSpot when ``HUBSPOT_TOKEN`` is set, else the logging CRM (local
development and demos); crm_sync.apps says which at start-up.
"""

from __future__ import annotations

from django.conf import settings

from crm_sync.adapters.base import ContactConflict, CRMAdapter, EmailTaken, UpsertResult

__all__ = ["CRMAdapter", "ContactConflict", "EmailTaken", "UpsertResult", "get_crm"]


def get_crm() -> CRMAdapter:
    if settings.HUBSPOT_TOKEN:
        from crm_sync.adapters.hubspot import HubSpotCRM

        return HubSpotCRM(base_url=settings.HUBSPOT_BASE_URL, token=settings.HUBSPOT_TOKEN)
    from crm_sync.adapters.logging_crm import LoggingCRM

    return LoggingCRM()
