"""The marketplace sellers' queues (support/sellers.py): seller disputes for finance
admins and owners (chargebacks are money decisions), sellers' problems for every role.
Created (and removed) as support.0002 creates its queues, with their grants."""

import importlib

from django.db import migrations

_queues = importlib.import_module("support.migrations.0002_support_queues")

QUEUES = [
    ("seller_disputes", "Seller disputes",
     "Chargebacks on marketplace orders: order, buyer and seller; finance admins and owners",
     ["owner", "finance_admin"]),
    ("sellers", "Sellers",
     "Marketplace sellers' problems: failed payouts of their connected accounts",
     ["owner", "finance_admin", "support_agent"]),
]


def create_queues(apps, schema_editor):
    _queues.create_queues(apps, schema_editor, QUEUES)


def remove_queues(apps, schema_editor):
    _queues.remove_queues(apps, schema_editor, QUEUES)


class Migration(migrations.Migration):

    dependencies = [("support", "0002_support_queues")]

    operations = [migrations.RunPython(create_queues, remove_queues)]
