"""The audit log: one writer, masked secrets, append-only in PostgreSQL, read-only admin."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.utils import DatabaseError

from audit import codes
from audit.masking import mask_text
from audit.models import AuditEntry
from audit.services import audit_record, mask_secrets
from tests.factories import CustomerFactory


def test_masking_of_secret_keys_and_card_numbers():
    data = {
        "reason": "customer asked",
        "api_key": "sk_test_123",
        "STRIPE_SECRET": "whsec_1",
        "nested": {"access_token": "abc", "Password": "hunter2", "amount": 500},
        "idempotency_key": "refund-42",
        "note": "card 4242 4242 4242 4242 was used; order 1234567890123",
        "items": [{"token": "t"}, "4000-0000-0000-0002"],
    }
    masked = mask_secrets(data)
    assert masked["reason"] == "customer asked"
    assert masked["api_key"] == "***"
    assert masked["STRIPE_SECRET"] == "***"
    assert masked["nested"] == {"access_token": "***", "Password": "***", "amount": 500}
    assert masked["idempotency_key"] == "refund-42"
    # A Luhn-valid card number keeps only its last four digits; other digit runs stay.
    assert masked["note"] == "card ****4242 was used; order 1234567890123"
    assert masked["items"] == [{"token": "***"}, "****0002"]


def test_webhook_urls_with_the_secret_in_the_path_are_masked():
    slack = (
        "POST https://hooks.slack.com/services/T0A1B2C3D/B0E4F5G6H/q8WzR3xLmN0pK7vY2sTb9c failed"
    )
    assert mask_text(slack) == "POST https://hooks.slack.com/*** failed"
    # The same /services/T.../B.../<secret> shape behind a proxy or a local fake.
    assert (
        mask_text("http://127.0.0.1:8080/services/T000/B000/XXXX answered 500")
        == "http://127.0.0.1:8080/services/*** answered 500"
    )
    # Ordinary paths are left alone.
    assert mask_text("GET /api/services/list answered 500") == "GET /api/services/list answered 500"


@pytest.mark.django_db
def test_audit_record_masks_before_storing_and_knows_its_target(owner):
    customer = CustomerFactory()
    entry = audit_record(
        action=codes.CUSTOMER_UPDATED,
        actor=owner,
        target=customer,
        data={
            "before": {"email": "a@x.test"},
            "after": {"email": "b@x.test"},
            "webhook_secret": "whsec_abc",
        },
        request_id="req-12345678",
    )
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert stored.data["webhook_secret"] == "***"
    assert stored.data["after"] == {"email": "b@x.test"}
    assert stored.actor == owner and stored.actor_label == owner.username
    assert stored.target_id == str(customer.pk)
    assert stored.target_type.model_class().__name__ == "Customer"
    assert stored.request_id == "req-12345678"


@pytest.mark.django_db
def test_unknown_action_codes_are_refused():
    with pytest.raises(ValueError, match="unknown audit action"):
        audit_record(action="billing.refund.issuedd")
    assert AuditEntry.objects.count() == 0


@pytest.mark.django_db
def test_update_and_delete_are_rejected_by_the_database():
    entry = audit_record(action=codes.CUSTOMER_CREATED, data={"after": {"email": "a@x.test"}})
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).update(action=codes.CUSTOMER_UPDATED)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE audit_auditentry SET data = '{}'::jsonb")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM audit_auditentry")
    assert AuditEntry.objects.get(pk=entry.pk).data == {"after": {"email": "a@x.test"}}


@pytest.mark.django_db
def test_admin_offers_no_add_change_or_delete_even_to_superusers(client):
    superuser = get_user_model().objects.create_superuser(
        "root@example.test", "root@example.test", "a-long-superuser-password"
    )
    entry = audit_record(action=codes.CUSTOMER_CREATED, data={"reason": "test"})
    client.force_login(superuser)

    changelist = client.get("/admin/audit/auditentry/")
    assert changelist.status_code == 200
    assert b"/admin/audit/auditentry/add/" not in changelist.content
    assert b'name="action"' not in changelist.content  # no bulk actions (delete)

    assert client.get("/admin/audit/auditentry/add/").status_code == 403
    detail = client.get(f"/admin/audit/auditentry/{entry.pk}/change/")
    assert detail.status_code == 200
    assert b'name="_save"' not in detail.content
    assert b"/delete/" not in detail.content
    post = client.post(f"/admin/audit/auditentry/{entry.pk}/change/", {"action": "x"})
    assert post.status_code == 403
    assert (
        client.post(f"/admin/audit/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert AuditEntry.objects.filter(pk=entry.pk, action=codes.CUSTOMER_CREATED).exists()
