"""The dashboard's hourly rollups now live in the console app (console.0001 renamed the
table); handler runs remember what the projection changed, for billing's published events."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0005_stripeevent_lean_indexes"),
        ("console", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="EventHourlyStats")],
            database_operations=[],
        ),
        migrations.AddField(
            model_name="handlerrun",
            name="changes",
            field=models.JSONField(blank=True, default=list, help_text="Customer fields the "
                                   "projection changed (published to subscribers)."),
        ),
    ]
