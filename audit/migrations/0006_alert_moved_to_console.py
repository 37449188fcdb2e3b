"""Alerts now live in the console app (console.0001 renamed the table): audit is the leaf
every app writes to and holds only the append-only log."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("audit", "0005_staff_user_updated_code"),
        ("console", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="Alert")],
            database_operations=[],
        ),
    ]
