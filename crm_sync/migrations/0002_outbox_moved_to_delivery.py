"""The outbox now lives in the delivery app (delivery.0001 renamed the table): crm_sync's
state forgets the model; the database is left as delivery.0001 made it."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("crm_sync", "0001_initial"),
        ("delivery", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="OutboxMessage")],
            database_operations=[],
        ),
    ]
