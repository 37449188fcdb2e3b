"""The provisioning pages as every role, the endpoint owner actions (audited, the secret
shown once), the webhooks section of the OpenAPI document and product_webhook_test."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from standardwebhooks.webhooks import Webhook

from audit.models import AuditEntry
from provisioning import webhooks
from provisioning.models import Entitlement, ProductEndpoint
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

PAGES = {
    "provisioning_onboarding": {"owner": 200, "finance_admin": 200, "support_agent": 200},
    "provisioning_endpoints": {"owner": 200, "finance_admin": 200, "support_agent": 403},
}


@pytest.mark.parametrize("name", list(PAGES))
def test_pages_by_role(client, staff_by_role, name):
    for role, status in PAGES[name].items():
        client.force_login(staff_by_role[role])
        assert client.get(reverse(name)).status_code == status, role


def test_endpoint_pages_by_role(client, staff_by_role, product):
    pk = product.endpoint.pk
    expected = {
        "provisioning_endpoint_deliveries": {
            "owner": 200,
            "finance_admin": 200,
            "support_agent": 403,
        },
        "provisioning_endpoint_rotate": {"owner": 200, "finance_admin": 403, "support_agent": 403},
    }
    for name, by_role in expected.items():
        for role, status in by_role.items():
            client.force_login(staff_by_role[role])
            assert client.get(reverse(name, args=[pk])).status_code == status, (name, role)


def test_empty_states_explain_themselves(client, owner):
    client.force_login(owner)
    assert "Nobody is waiting" in client.get(reverse("provisioning_onboarding")).content.decode()
    assert (
        "No product endpoint yet" in client.get(reverse("provisioning_endpoints")).content.decode()
    )


def test_paid_not_onboarded_lists_age_and_reason(client, support_agent):
    customer = CustomerFactory(status="active", plan_id="plan_pro")
    Entitlement.objects.create(
        customer=customer, entitled=True, generation=1, reason="attempt 2 failed: 500"
    )
    client.force_login(support_agent)
    page = client.get(reverse("provisioning_onboarding")).content.decode()
    assert customer.display_name in page and "attempt 2 failed: 500" in page


def test_owner_adds_an_endpoint_and_sees_the_secret_once(client, owner):
    client.force_login(owner)
    response = client.post(
        reverse("provisioning_endpoints"),
        {"action": "add", "url": "https://app.example.test/hooks?token=abc", "description": "app"},
    )
    assert response.status_code == 200
    endpoint = ProductEndpoint.objects.get()
    assert endpoint.secret.startswith("whsec_")
    assert endpoint.secret in response.content.decode()
    again = client.get(reverse("provisioning_endpoints")).content.decode()
    assert endpoint.secret not in again and endpoint.secret_hint in again
    entry = AuditEntry.objects.get(action="provisioning.endpoint.created")
    stored = json.dumps(entry.data)
    assert endpoint.secret not in stored and "token=abc" not in stored


def test_bad_endpoint_urls_are_refused_with_a_reason(client, owner):
    client.force_login(owner)
    for url, words in (
        ("ftp://example.test/x", "full URL"),
        ("http://app.example.test/hooks", "https"),
        ("https://user:pw@app.example.test/", "user name"),
    ):
        response = client.post(reverse("provisioning_endpoints"), {"action": "add", "url": url})
        assert response.status_code == 200 and words in response.content.decode()
    assert not ProductEndpoint.objects.exists()


def test_finance_admin_cannot_add_or_rotate(client, finance_admin, product):
    client.force_login(finance_admin)
    add = client.post(
        reverse("provisioning_endpoints"), {"action": "add", "url": "https://x.test/"}
    )
    assert add.status_code == 403
    rotate = client.post(
        reverse("provisioning_endpoint_rotate", args=[product.endpoint.pk]), {"confirm": "yes"}
    )
    assert rotate.status_code == 403
    product.endpoint.refresh_from_db()
    assert product.endpoint.secret == product.secret and ProductEndpoint.objects.count() == 1


def test_rotation_needs_confirmation_and_is_audited_without_the_secret(client, owner, product):
    client.force_login(owner)
    url = reverse("provisioning_endpoint_rotate", args=[product.endpoint.pk])
    unconfirmed = client.post(url, {"reason": "leak"})
    assert (
        unconfirmed.status_code == 200 and "Tick the confirmation" in unconfirmed.content.decode()
    )
    product.endpoint.refresh_from_db()
    assert product.endpoint.secret == product.secret

    done = client.post(url, {"confirm": "yes", "reason": "scheduled"})
    product.endpoint.refresh_from_db()
    new = product.endpoint.secret
    assert new != product.secret and product.endpoint.previous_secret == product.secret
    assert new in done.content.decode()
    entry = AuditEntry.objects.get(action="provisioning.endpoint.secret_rotated")
    assert new not in json.dumps(entry.data) and product.secret not in json.dumps(entry.data)
    assert entry.data["reason"] == "scheduled"

    # The confirmation posted again (a reload, a double click) during the overlap: refused,
    # the secret the product may still verify with keeps signing.
    again = client.post(url, {"confirm": "yes", "reason": "again"})
    assert again.status_code == 200 and "A rotation is in progress" in again.content.decode()
    product.endpoint.refresh_from_db()
    assert (product.endpoint.secret, product.endpoint.previous_secret) == (new, product.secret)
    assert AuditEntry.objects.filter(action="provisioning.endpoint.secret_rotated").count() == 1


def test_disable_stops_new_messages(client, owner, product):
    client.force_login(owner)
    response = client.post(
        reverse("provisioning_endpoints"), {"action": "disable", "endpoint": product.endpoint.pk}
    )
    assert response.status_code == 302
    assert webhooks.enabled_endpoints() == []
    assert AuditEntry.objects.filter(action="provisioning.endpoint.updated").count() == 1


def test_delivery_log_shows_rows_without_secrets(client, finance_admin, product, buyer_paid):
    client.force_login(finance_admin)
    page = client.get(
        reverse("provisioning_endpoint_deliveries", args=[product.endpoint.pk])
    ).content.decode()
    assert "customer.entitled" in page and "product answered 200" in page
    assert product.secret not in page


@pytest.fixture
def buyer_paid(webhook, product):
    from tests.fakes.fixtures import run_all
    from tests.provisioning_support import Buyer

    buyer = Buyer(webhook)
    buyer.checkout_paid()
    run_all()
    return buyer


def test_openapi_documents_every_product_event(client):
    doc = client.get("/api/v1/openapi.json").json()
    assert set(doc["webhooks"]) == set(webhooks.EVENT_TYPES)
    for name, item in doc["webhooks"].items():
        ref = item["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert schema["properties"]["type"]["const"] == name
        headers = {p["name"] for p in item["post"]["parameters"]}
        assert headers == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert "post" in doc["paths"]["/api/v1/customers/{id}/provisioned"]


def test_product_webhook_test_prints_status_and_latency(product):
    out = io.StringIO()
    call_command("product_webhook_test", stdout=out)
    assert "ok: status 200 in" in out.getvalue()
    record = product.fake.messages("test.ping")[-1]
    assert Webhook(product.secret).verify(record.raw, record.headers)["type"] == "test.ping"


def test_product_webhook_test_says_what_is_wrong(product, sync_settings):
    with pytest.raises(CommandError, match="No product endpoint #999"):
        call_command("product_webhook_test", "--endpoint", "999")
    product.fake.fail(500, times=1)
    with pytest.raises(CommandError, match="status 500"):
        call_command("product_webhook_test", "--endpoint", str(product.endpoint.pk))
    ProductEndpoint.objects.update(enabled=False)
    with pytest.raises(CommandError, match="No enabled product endpoint"):
        call_command("product_webhook_test")
