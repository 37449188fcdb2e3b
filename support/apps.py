import logging

from django.apps import AppConfig

logger = logging.getLogger("support")


class SupportConfig(AppConfig):
    name = "support"
    verbose_name = "Support"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from billing.events import subscribe
        from customers.signals import customer_erasing
        from delivery.senders import register_channel
        from delivery.signals import message_dead
        from support import emails, handlers, sellers, services
        from support.delivery import REQUESTER_EVENT_TYPES, deliver_helpdesk, helpdesk_requester

        register_channel(services.CHANNEL, deliver_helpdesk, label="Helpdesk")
        subscribe(handlers.SUBSCRIBER, handlers.EVENT_TYPES, handlers.helpdesk_ticket)
        subscribe(emails.SUBSCRIBER, emails.EVENT_TYPES, emails.customer_notification)
        subscribe("helpdesk_requester", REQUESTER_EVENT_TYPES, helpdesk_requester)
        subscribe(sellers.SUBSCRIBER, sellers.EVENT_TYPES, sellers.seller_ticket)
        message_dead.connect(handlers.review_dead_delivery, dispatch_uid="support_review_dead")
        customer_erasing.connect(services.tickets_erase, dispatch_uid="support_erase_tickets")
        if not settings.ZENDESK_TOKEN:
            logger.info(
                "Helpdesk: no ZENDESK_TOKEN set, using the local helpdesk "
                "(tickets stay in the console)"
            )
