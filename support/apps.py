import logging

from django.apps import AppConfig

logger = logging.getLogger("support")


class SupportConfig(AppConfig):
    name = "support"
    verbose_name = "Support"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        if not settings.ZENDESK_TOKEN:
            logger.info("Helpdesk: no ZENDESK_TOKEN set, using the local helpdesk "
                        "(tickets stay in the console)")
