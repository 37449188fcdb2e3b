"""The console's own records move into the console app, rows and all.

Alerts (from audit), account-state API tokens (from customers) and the dashboard's hourly
rollups (from billing): each table is renamed and its content type relabelled; the old
apps' states forget the models in audit.0006, customers.0006 and billing.0006.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

from config.migration_ops import move_content_type, rename_table


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("audit", "0005_staff_user_updated_code"),
        ("customers", "0005_api_token"),
        ("billing", "0005_stripeevent_lean_indexes"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("auth", "0012_alter_user_first_name_max_length"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                rename_table("audit_alert", "console_alert"),
                rename_table("customers_apitoken", "console_apitoken"),
                rename_table("billing_eventhourlystats", "console_eventhourlystats"),
            ],
            state_operations=[
        migrations.CreateModel(
            name='Alert',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('key', models.CharField(max_length=200)),
                ('title', models.CharField(max_length=300)),
                ('detail', models.TextField(blank=True)),
                ('state', models.CharField(choices=[('open', 'Open'), ('acknowledged', 'Acknowledged'), ('recovered', 'Recovered')], default='open', max_length=12)),
                ('raised_at', models.DateTimeField(auto_now_add=True)),
                ('cleared_at', models.DateTimeField(blank=True, null=True)),
                ('delivered_at', models.DateTimeField(blank=True, null=True)),
                ('delivery_error', models.TextField(blank=True)),
                ('acknowledged_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'ordering': ['-raised_at'],
                'constraints': [models.UniqueConstraint(condition=models.Q(('state', 'recovered'), _negated=True), fields=('key',), name='one_unrecovered_alert_per_key')],
            },
        ),
        migrations.CreateModel(
            name='ApiToken',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(help_text="Who uses it, e.g. 'support chatbot'", max_length=200)),
                ('prefix', models.CharField(editable=False, help_text="The token's first characters, to recognise it", max_length=16, unique=True)),
                ('token_hash', models.CharField(editable=False, max_length=64, unique=True)),
                ('scopes', models.CharField(default='state:read', help_text='Space-separated; state:read is the only scope', max_length=200)),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('revoked_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('use_count', models.PositiveBigIntegerField(default=0, editable=False)),
                ('last_used_at', models.DateTimeField(blank=True, editable=False, null=True)),
                ('created_by', models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('revoked_by', models.ForeignKey(blank=True, editable=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'API token',
                'ordering': ['-created_at'],
            },
        ),
        migrations.CreateModel(
            name='EventHourlyStats',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('hour', models.DateTimeField(unique=True)),
                ('events', models.PositiveIntegerField(default=0)),
                ('deliveries', models.PositiveIntegerField(default=0)),
                ('duplicates', models.PositiveIntegerField(default=0)),
                ('failed', models.PositiveIntegerField(default=0)),
                ('unusable', models.PositiveIntegerField(default=0)),
                ('payments', models.PositiveIntegerField(default=0)),
                ('payments_failed', models.PositiveIntegerField(default=0)),
                ('recoveries', models.PositiveIntegerField(default=0)),
                ('handler_runs', models.PositiveIntegerField(default=0, help_text='runs created this hour')),
                ('lag_histogram', models.JSONField(default=list)),
                ('sync_counts', models.JSONField(default=dict, help_text='outbox rows created this hour: channel -> state -> count (CRM and helpdesk)')),
                ('refreshed_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'verbose_name': 'hourly event statistics',
                'verbose_name_plural': 'hourly event statistics',
                'ordering': ['-hour'],
            },
        ),
            ],
        ),
        move_content_type("alert", "audit", "console"),
        move_content_type("apitoken", "customers", "console"),
        move_content_type("eventhourlystats", "billing", "console"),
    ]
