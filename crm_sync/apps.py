import logging

from django.apps import AppConfig

logger = logging.getLogger("crm_sync")


class CrmSyncConfig(AppConfig):
    name = "crm_sync"
    verbose_name = "CRM sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        if not settings.HUBSPOT_TOKEN:
            logger.info("CRM: no HUBSPOT_TOKEN set, using the local logging CRM "
                        "(contacts are logged, not sent)")
