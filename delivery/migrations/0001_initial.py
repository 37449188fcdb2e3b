"""The outbox moves from crm_sync to its own app, rows and all: the table is renamed
(crm_sync's state forgets the model in crm_sync.0002), its indexes follow the new name and
its content type is relabelled. delivery.0002 then changes the model itself."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

from config.migration_ops import move_content_type, rename_table


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("crm_sync", "0001_initial"),
        ("billing", "0005_stripeevent_lean_indexes"),
        ("customers", "0005_api_token"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[rename_table("crm_sync_outboxmessage", "delivery_outboxmessage")],
            state_operations=[
        migrations.CreateModel(
            name='OutboxMessage',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('channel', models.CharField(choices=[('crm', 'CRM'), ('helpdesk', 'Helpdesk'), ('email', 'Customer email'), ('slack', 'Slack')], max_length=10)),
                ('kind', models.CharField(help_text='e.g. contact_upsert, ticket_open, email_payment_failed', max_length=60)),
                ('dedupe_key', models.CharField(max_length=255, unique=True)),
                ('coalesce_key', models.CharField(blank=True, db_index=True, help_text='Waiting rows with the same key are superseded by the newest', max_length=255)),
                ('payload', models.JSONField(default=dict)),
                ('state', models.CharField(choices=[('pending', 'Pending'), ('delivering', 'Delivering'), ('delivered', 'Delivered'), ('failed', 'Failed (retry scheduled)'), ('paused', 'Paused (configuration problem)'), ('dead', 'Dead (needs a person)'), ('superseded', 'Superseded by a newer update')], default='pending', max_length=12)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('last_error', models.TextField(blank=True)),
                ('next_attempt_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('outcome', models.CharField(blank=True, help_text='What the delivery did', max_length=300)),
                ('external_id', models.CharField(blank=True, help_text="The vendor's id of what was created or updated", max_length=255)),
                ('created_at', models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('customer', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='outbox_messages', to='customers.customer')),
                ('source_event', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='outbox_messages', to='billing.stripeevent')),
            ],
            options={
                'verbose_name': 'outbox message',
                'ordering': ['-created_at', '-id'],
                'indexes': [models.Index(fields=['state', 'next_attempt_at'], name='crm_sync_ou_state_3b5386_idx'), models.Index(fields=['customer', '-created_at'], name='crm_sync_ou_custome_028a09_idx'), models.Index(fields=['channel', 'state'], name='crm_sync_ou_channel_b78772_idx')],
            },
        ),
            ],
        ),
        move_content_type("outboxmessage", "crm_sync", "delivery"),
        # Index names derive from the table name: follow the rename.
        migrations.RenameIndex(model_name="outboxmessage", new_name="delivery_ou_state_47086e_idx",
                               old_name="crm_sync_ou_state_3b5386_idx"),
        migrations.RenameIndex(model_name="outboxmessage", new_name="delivery_ou_custome_ce1cae_idx",
                               old_name="crm_sync_ou_custome_028a09_idx"),
        migrations.RenameIndex(model_name="outboxmessage", new_name="delivery_ou_channel_b6b501_idx",
                               old_name="crm_sync_ou_channel_b78772_idx"),
    ]
