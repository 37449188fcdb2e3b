"""Account-state API tokens now live in the console app (console.0001 renamed the table)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("customers", "0005_api_token"),
        ("console", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="ApiToken")],
            database_operations=[],
        ),
    ]
