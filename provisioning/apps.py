from django.apps import AppConfig


class ProvisioningConfig(AppConfig):
    name = "provisioning"
    verbose_name = "Provisioning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing.events import subscribe
        from delivery.senders import register_channel
        from delivery.signals import message_dead
        from provisioning import handlers, orders, webhooks

        register_channel(webhooks.CHANNEL, webhooks.deliver_product, label="Provisioning webhook")
        subscribe(handlers.SUBSCRIBER, handlers.EVENT_TYPES, handlers.entitlement_update)
        subscribe(orders.SUBSCRIBER, orders.EVENT_TYPES, orders.order_webhooks)
        message_dead.connect(handlers.provisioning_dead, dispatch_uid="provisioning_dead")
