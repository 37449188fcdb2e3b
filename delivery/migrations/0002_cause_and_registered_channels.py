"""An outbox row names its cause as plain text (``stripe_event:evt_…``) instead of a
foreign key into billing, and its channel is a name checked against the channel registry
instead of a fixed choice list; retrying rows gets its own permission.

Apart from delivery.0001 so that the reverse (re-adding the foreign key, whose index is
created at the end of the migration) runs while the table still has its new name.
"""

from django.db import migrations, models


def causes_from_events(apps, schema_editor):
    OutboxMessage = apps.get_model("delivery", "OutboxMessage")
    for row in OutboxMessage.objects.filter(source_event__isnull=False).select_related(
            "source_event").iterator():
        if row.source_event.stripe_id:
            OutboxMessage.objects.filter(pk=row.pk).update(
                cause=f"stripe_event:{row.source_event.stripe_id}")


def events_from_causes(apps, schema_editor):
    OutboxMessage = apps.get_model("delivery", "OutboxMessage")
    StripeEvent = apps.get_model("billing", "StripeEvent")
    for row in OutboxMessage.objects.filter(cause__startswith="stripe_event:").iterator():
        event = StripeEvent.objects.filter(stripe_id=row.cause.split(":", 1)[1]).first()
        if event is not None:
            OutboxMessage.objects.filter(pk=row.pk).update(source_event=event)


class Migration(migrations.Migration):

    dependencies = [
        ("delivery", "0001_initial"),
        ("billing", "0005_stripeevent_lean_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="outboxmessage",
            name="cause",
            field=models.CharField(blank=True, db_index=True, default="", max_length=255,
                                   help_text="What made this row, e.g. stripe_event:evt_123"),
            preserve_default=False,
        ),
        migrations.RunPython(causes_from_events, events_from_causes),
        migrations.RemoveField(model_name="outboxmessage", name="source_event"),
        migrations.AlterField(
            model_name="outboxmessage",
            name="channel",
            field=models.CharField(help_text="A registered channel: crm, helpdesk, email, slack",
                                   max_length=20),
        ),
        migrations.AlterModelOptions(
            name="outboxmessage",
            options={"ordering": ["-created_at", "-id"], "verbose_name": "outbox message",
                     "permissions": [("retry_outboxmessage",
                                      "Can retry dead, paused or failed outbox messages")]},
        ),
    ]
