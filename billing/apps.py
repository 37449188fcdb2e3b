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

        from django.db.models.signals import post_save

        from billing.orders import seller_linked
        from customers.models import Customer

        post_save.connect(seller_linked, sender=Customer, dispatch_uid="billing_order_sellers")
