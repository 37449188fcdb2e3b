from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "delivery"
    verbose_name = "Outbound deliveries"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from customers.signals import customer_erasing
        from delivery.email import deliver_email
        from delivery.outbox import outbox_scrub_customer
        from delivery.senders import EMAIL, SLACK, register_channel
        from delivery.slack import deliver_slack

        register_channel(EMAIL, deliver_email, label="Email")
        customer_erasing.connect(outbox_scrub_customer, dispatch_uid="delivery_erase_rows")
        register_channel(SLACK, deliver_slack, label="Slack")
