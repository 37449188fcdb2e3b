import logging

from django.apps import AppConfig

logger = logging.getLogger("crm_sync")


class CrmSyncConfig(AppConfig):
    name = "crm_sync"
    verbose_name = "CRM sync"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from billing.events import subscribe
        from crm_sync import sync
        from customers.signals import customer_erasing
        from delivery.senders import register_channel

        register_channel(sync.CHANNEL, sync.deliver_crm, label="CRM")
        customer_erasing.connect(sync.contact_erase_request, dispatch_uid="crm_erase_contact")
        subscribe(sync.SUBSCRIBER, sync.EVENT_TYPES, sync.crm_update)
        if not settings.HUBSPOT_TOKEN:
            logger.info(
                "CRM: no HUBSPOT_TOKEN set, using the local logging CRM "
                "(contacts are logged, not sent)"
            )
