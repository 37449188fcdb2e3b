from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender: Any, **kwargs: Any) -> None:
    from django.apps import apps

    from customers.roles import sync_role_groups

    sync_role_groups(apps, strict=True)


class CustomersConfig(AppConfig):
    name = "customers"
    verbose_name = "Customers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Re-apply the role table after every migrate (runs once, after the last app).
        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="customers_sync_roles")
