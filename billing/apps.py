from django.apps import AppConfig


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = "Billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing import erasure
        from billing.adapters import stripe_client
        from customers.signals import customer_erasing

        stripe_client.configure()
        customer_erasing.connect(erasure.events_scrub, dispatch_uid="billing_erase_events")
