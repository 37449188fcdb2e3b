"""Models moved between apps keep every row: a database at the old layout (outbox in
crm_sync, alerts in audit, API tokens in customers, hourly rollups in billing) migrated
forward finds its outbox rows, alerts, tokens, rollups and handler runs where the code
now looks for them, with the outbox row's cause carried over from its event."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

# The last migration of each app before the layout moved models.
OLD_LAYOUT = [
    ("audit", "0005_staff_user_updated_code"),
    ("customers", "0005_api_token"),
    ("billing", "0005_stripeevent_lean_indexes"),
    ("crm_sync", "0001_initial"),
    ("delivery", None),
    ("console", None),
]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state([t for t in targets if t[1]]).apps


def _migrate_to_latest():
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.fixture
def old_layout():
    """The historical models of the old layout; the database is at the newest layout
    again afterwards, whatever the test did."""
    try:
        yield _migrate(OLD_LAYOUT)
    finally:
        _migrate_to_latest()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_old_layout_rows_survive_the_move(old_layout):
    old = old_layout
    now = timezone.now()
    customer = old.get_model("customers", "Customer").objects.create(
        email="moved@example.test", stripe_customer_id="cus_moved1"
    )
    event = old.get_model("billing", "StripeEvent").objects.create(
        stripe_id="evt_moved1", type="invoice.payment_failed", created=now, payload={}
    )
    old.get_model("billing", "HandlerRun").objects.create(
        event=event, handler="crm_update", status="dead", attempts=8, last_error="HTTP 500"
    )
    outbox = old.get_model("crm_sync", "OutboxMessage")
    outbox.objects.create(
        channel="crm",
        kind="contact_sync",
        dedupe_key="crm:contact:1",
        customer=customer,
        source_event=event,
        payload={"properties": {}},
    )
    outbox.objects.create(
        channel="slack",
        kind="alert",
        dedupe_key="slack:alert:1",
        payload={"text": "hi"},
        state="dead",
    )
    old.get_model("audit", "Alert").objects.create(key="outbox_dead", title="1 dead delivery")
    old.get_model("customers", "ApiToken").objects.create(
        name="chatbot", prefix="sbk_abc", token_hash="0" * 64
    )
    old.get_model("billing", "EventHourlyStats").objects.create(
        hour=now.replace(minute=0, second=0, microsecond=0), events=7
    )
    content_types = old.get_model("contenttypes", "ContentType").objects
    alert_type = content_types.get_or_create(app_label="audit", model="alert")[0]

    _migrate_to_latest()

    from billing.models import HandlerRun
    from console.models import Alert, ApiToken, EventHourlyStats
    from delivery.models import OutboxMessage

    rows = {row.kind: row for row in OutboxMessage.objects.all()}
    assert set(rows) == {"contact_sync", "alert"}
    assert rows["contact_sync"].cause == "stripe_event:evt_moved1"
    assert rows["contact_sync"].customer.email == "moved@example.test"
    assert rows["alert"].state == "dead" and rows["alert"].cause == ""
    assert Alert.objects.get().title == "1 dead delivery"
    assert ApiToken.objects.get().name == "chatbot"
    assert EventHourlyStats.objects.get().events == 7
    run = HandlerRun.objects.get()
    assert (run.handler, run.status, run.event.stripe_id) == ("crm_update", "dead", "evt_moved1")
    # The content type kept its id (audit entries point at it) and follows the model.
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()
    assert ContentType.objects.get_for_model(Alert).pk == alert_type.pk
