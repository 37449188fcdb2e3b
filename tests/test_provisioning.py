"""Provisioning through the webhook URL: a payment entitles the customer, the product
hears it as a signed Standard Webhook through the outbox, confirms (2xx or the API), and
only then does the welcome email go out. Retries, the retry horizon, replays, secret
rotation and the dunning policy, against a local product endpoint."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from billing import services as billing_services
from billing.models import HandlerRun, RunStatus, StripeEvent
from console.api_tokens import api_token_create
from console.models import Alert
from delivery.models import OutboxMessage, OutboxState
from devkit import stripe_events as events
from provisioning import states, webhooks
from provisioning.models import Entitlement, Transition
from support.models import Ticket
from tests.fakes.fixtures import advance, run_all, sweep_and_run
from tests.provisioning_support import Buyer

pytestmark = pytest.mark.django_db

EMAIL = "pat@example.test"


@pytest.fixture
def buyer(webhook):
    return Buyer(webhook, email=EMAIL)


def welcome_emails() -> list:
    return [m for m in mail.outbox if m.to == [EMAIL] and "ready" in m.subject]


def verified(product, record) -> dict:
    """The message as the product's Standard Webhooks verifier reads it."""
    return Webhook(product.secret).verify(record.raw, record.headers)


def transitions(customer) -> list[tuple[str, str]]:
    return list(
        Transition.objects.filter(customer=customer)
        .order_by("at", "pk")
        .values_list("from_state", "to_state")
    )


def replay_everything(buyer, django_capture_on_commit_callbacks) -> None:
    """Stripe delivers every event again, and staff replay them all in full."""
    buyer.replay_all()
    HandlerRun.objects.update(status=RunStatus.FAILED)
    with django_capture_on_commit_callbacks(execute=True):
        billing_services.events_replay(
            actor=None,
            event_pks=list(StripeEvent.objects.values_list("pk", flat=True)),
            reason="test",
        )
    run_all()


def test_checkout_paid_is_one_signed_entitlement_then_active_then_one_welcome(
    buyer, product, django_capture_on_commit_callbacks
):
    buyer.checkout_paid()
    run_all()
    customer = buyer.customer()
    sent = product.fake.messages(webhooks.ENTITLED)
    assert len(sent) == 1
    body = verified(product, sent[0])
    assert body["type"] == "customer.entitled"
    assert body["data"]["customer_id"] == str(customer.pk)
    assert body["data"]["email"] == EMAIL
    assert body["data"]["plan"] == {"id": "plan_pro", "name": "Pro"}
    assert body["data"]["status"] == "active"
    assert body["data"]["stripe_customer_id"] == buyer.cus["id"]
    assert body["data"]["stripe_subscription_id"] == buyer.sub_id
    assert sent[0].headers["webhook-signature"].startswith("v1,")
    assert " " not in sent[0].headers["webhook-signature"]  # one secret, one signature
    assert customer.onboarding_state == "active"
    assert transitions(customer) == [
        ("", "pending_provisioning"),
        ("pending_provisioning", "active"),
    ]
    assert len(welcome_emails()) == 1
    assert customer.pk in {
        m.customer_id for m in OutboxMessage.objects.filter(kind="email_welcome")
    }

    replay_everything(buyer, django_capture_on_commit_callbacks)
    assert len(product.fake.messages(webhooks.ENTITLED)) == 1
    assert len(product.fake.messages()) == 1
    assert len(welcome_emails()) == 1
    assert len(transitions(customer)) == 2
    assert buyer.customer().onboarding_state == "active"


def test_events_in_any_order_and_twice_entitle_once(buyer, product):
    """Stripe's order is not ours: the invoice first, the customer last, each twice."""
    invoice = events.invoice(
        buyer.cus["id"], subscription_id=buyer.sub_id, billing_reason="subscription_create"
    )
    first = buyer.send("invoice.paid", invoice)
    second = buyer.send("customer.subscription.created", buyer.sub("active"))
    third = buyer.send("customer.created", buyer.cus)
    for event in (third, first, second):
        assert buyer.webhook.post(event).status_code == 200
    run_all()
    assert len(product.fake.messages(webhooks.ENTITLED)) == 1
    assert buyer.customer().onboarding_state == "active"
    assert len(welcome_emails()) == 1


def test_payment_alone_is_not_provisioning(buyer, sync_settings):
    """No product endpoint: the customer paid, but nobody confirmed access."""
    buyer.checkout_paid()
    run_all()
    customer = buyer.customer()
    assert customer.status == "active"
    assert customer.onboarding_state == "pending_provisioning"
    assert "no product endpoint" in Entitlement.objects.get(customer=customer).reason
    assert not welcome_emails()


def test_an_endpoint_added_later_hears_of_customers_still_waiting(
    buyer, sync_settings, owner, django_capture_on_commit_callbacks
):
    from devkit.fakes.product import FakeProduct
    from provisioning.endpoints import endpoint_create

    buyer.checkout_paid()
    run_all()
    assert buyer.customer().onboarding_state == "pending_provisioning"
    fake = FakeProduct().start()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            _, secret = endpoint_create(actor=owner, url=fake.endpoint_url)
        run_all()
        sent = fake.messages(webhooks.ENTITLED)
        assert len(sent) == 1
        assert Webhook(secret).verify(sent[0].raw, sent[0].headers)["data"]["email"] == EMAIL
    finally:
        fake.stop()
    assert buyer.customer().onboarding_state == "active"
    assert len(welcome_emails()) == 1


def test_product_answering_500_then_200_is_retrying_then_active(buyer, product):
    product.fake.fail(500, times=1)
    buyer.checkout_paid()
    run_all()
    customer = buyer.customer()
    assert customer.onboarding_state == "retrying"
    row = OutboxMessage.objects.get(channel=webhooks.CHANNEL, kind=webhooks.ENTITLED)
    assert row.state == OutboxState.FAILED and "500" in row.last_error
    assert not welcome_emails()

    advance(3600)  # past the outbox's backoff
    sweep_and_run()
    customer.refresh_from_db()
    assert customer.onboarding_state == "active"
    assert transitions(customer) == [
        ("", "pending_provisioning"),
        ("pending_provisioning", "retrying"),
        ("retrying", "active"),
    ]
    attempts = product.fake.messages(webhooks.ENTITLED)
    assert [r.status for r in attempts] == [500, 200]
    # One message, retried: the same webhook-id, each attempt signed on its own.
    assert attempts[0].headers["webhook-id"] == attempts[1].headers["webhook-id"]
    assert verified(product, attempts[1])["type"] == "customer.entitled"
    assert len(welcome_emails()) == 1


def test_product_down_past_the_retry_horizon_fails_with_alert_and_ticket(
    buyer, product, settings, django_capture_on_commit_callbacks
):
    product.fake.fail(503, seconds=600)
    buyer.checkout_paid()
    run_all()
    customer = buyer.customer()
    assert customer.onboarding_state == "retrying"

    advance(settings.SYNC_RETRY_HORIZON_HOURS * 3600 + 60)
    sweep_and_run()
    customer.refresh_from_db()
    assert customer.onboarding_state == "failed"
    row = OutboxMessage.objects.get(channel=webhooks.CHANNEL, kind=webhooks.ENTITLED)
    assert row.state == OutboxState.DEAD
    alert = Alert.objects.get(key=states.failed_alert_key(customer.pk), state="open")
    assert "Provisioning failed" in alert.title
    ticket = Ticket.objects.get(customer=customer, situation_key__startswith="review:")
    assert "Provisioning webhook" in ticket.body and "customer.entitled" in ticket.body
    assert not welcome_emails()

    # The product comes back and confirms through the API: active, the alert clears.
    product.fake.heal()
    with django_capture_on_commit_callbacks(execute=True):
        assert states.provisioned(customer.pk, how="test", cause="test")
    assert Alert.objects.get(key=states.failed_alert_key(customer.pk)).state != "open"
    run_all()
    assert len(welcome_emails()) == 1


def test_secret_rotation_signs_with_both_until_the_overlap_ends(product, owner):
    from provisioning.endpoints import endpoint_rotate_secret

    old = product.secret
    new = endpoint_rotate_secret(actor=owner, endpoint_pk=product.endpoint.pk, reason="test")
    product.endpoint.refresh_from_db()
    webhooks.send_test(product.endpoint)
    during = product.fake.messages("test.ping")[-1]
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(during.raw, during.headers)["type"] == "test.ping"
    assert Webhook(new).verify(during.raw, during.headers)["type"] == "test.ping"

    product.endpoint.previous_secret_expires_at = timezone.now() - timedelta(seconds=1)
    product.endpoint.save()
    webhooks.send_test(product.endpoint)
    after = product.fake.messages("test.ping")[-1]
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    assert Webhook(new).verify(after.raw, after.headers)["type"] == "test.ping"
    with pytest.raises(WebhookVerificationError):
        Webhook(old).verify(after.raw, after.headers)


def test_a_tampered_body_does_not_verify(product):
    webhooks.send_test(product.endpoint)
    record = product.fake.messages("test.ping")[-1]
    # As sent, it verifies: the refusal below is the tampering's, not a missing signature.
    assert Webhook(product.secret).verify(record.raw, record.headers)["type"] == "test.ping"
    tampered = record.raw.replace(b"Hello", b"Howdy")
    with pytest.raises(WebhookVerificationError):
        Webhook(product.secret).verify(tampered, record.headers)


# --- the provisioned API -----------------------------------------------------------------


def _token(owner, scopes: str) -> str:
    return api_token_create(actor=owner, name="the product", scopes=scopes)[1]


def test_provisioned_api_confirms_once_and_is_idempotent(
    buyer, client, owner, sync_settings, django_capture_on_commit_callbacks
):
    buyer.checkout_paid()
    run_all()
    customer = buyer.customer()
    url = f"/api/v1/customers/{customer.pk}/provisioned"
    assert client.post(url).status_code == 401
    read_only = _token(owner, "state:read")
    assert client.post(url, HTTP_AUTHORIZATION=f"Bearer {read_only}").status_code == 403
    token = _token(owner, "provisioning:write")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    assert client.get(url, **auth).status_code == 405
    missing = client.post("/api/v1/customers/cus_nobody/provisioned", **auth)
    assert missing.status_code == 404
    assert customer.onboarding_state == "pending_provisioning"

    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(url, **auth)
    assert first.status_code == 200
    assert first.json() == {
        "customer_id": str(customer.pk),
        "onboarding_state": "active",
        "changed": True,
    }
    again = client.post(f"/api/v1/customers/{buyer.cus['id']}/provisioned", **auth)
    assert again.status_code == 200 and again.json()["changed"] is False
    run_all()
    assert len(welcome_emails()) == 1
    customer.refresh_from_db()
    assert customer.onboarding_state == "active"


def test_provisioned_api_refuses_a_customer_who_never_paid(client, owner):
    from tests.factories import CustomerFactory

    customer = CustomerFactory()
    token = _token(owner, "provisioning:write")
    response = client.post(
        f"/api/v1/customers/{customer.pk}/provisioned", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_entitled"
    assert not mail.outbox


# --- plan changes and the dunning policy -------------------------------------------------


def test_plan_change_is_one_entitlement_changed(buyer, product, django_capture_on_commit_callbacks):
    buyer.checkout_paid()
    run_all()
    buyer.send("customer.subscription.updated", buyer.sub("active", "plan_team", "Team"))
    run_all()
    changed = product.fake.messages(webhooks.ENTITLEMENT_CHANGED)
    assert len(changed) == 1
    data = verified(product, changed[0])["data"]
    assert data["plan"]["id"] == "plan_team" and data["previous_plan"] == {"id": "plan_pro"}
    replay_everything(buyer, django_capture_on_commit_callbacks)
    assert len(product.fake.messages(webhooks.ENTITLEMENT_CHANGED)) == 1
    assert len(product.fake.messages(webhooks.ENTITLED)) == 1


@pytest.fixture
def dunning(settings):
    settings.DUNNING_MAX_FAILURES = 3
    settings.DUNNING_GRACE_DAYS = 7
    return settings


def test_dunning_revokes_only_after_n_failures_and_the_grace(
    webhook, product, dunning, django_capture_on_commit_callbacks
):
    day = 86400
    buyer = Buyer(webhook, email=EMAIL, start=int(time.time()) - 30 * day)
    buyer.checkout_paid()
    run_all()
    assert buyer.customer().onboarding_state == "active"
    invoice = buyer.failed(1, at=int(time.time()) - 20 * day)
    buyer.send(
        "customer.subscription.updated", buyer.sub("past_due"), at=int(time.time()) - 20 * day
    )
    buyer.failed(2, invoice=invoice, at=int(time.time()) - 15 * day)
    run_all()
    # N-1 failures, long past the grace: still entitled, even for the periodic sweep.
    assert states.dunning_sweep() == 0
    run_all()
    assert not product.fake.messages(webhooks.REVOKED)
    assert buyer.customer().onboarding_state == "active"

    buyer.failed(3, invoice=invoice, at=int(time.time()) - 10 * day)
    run_all()
    revoked = product.fake.messages(webhooks.REVOKED)
    assert len(revoked) == 1
    data = verified(product, revoked[0])["data"]
    assert "3 failed payments" in data["reason"]
    assert buyer.customer().onboarding_state == "revoked"
    replay_everything(buyer, django_capture_on_commit_callbacks)
    assert states.dunning_sweep() == 0
    assert len(product.fake.messages(webhooks.REVOKED)) == 1

    # A later payment entitles again: a new generation, confirmed, no second welcome.
    buyer.paid(at=int(time.time()) - 60)
    buyer.send("customer.subscription.updated", buyer.sub("active"), at=int(time.time()) - 50)
    run_all()
    entitled = product.fake.messages(webhooks.ENTITLED)
    assert len(entitled) == 2
    assert verified(product, entitled[1])["data"]["entitlement"] == {"generation": 2}
    assert buyer.customer().onboarding_state == "active"
    assert len(welcome_emails()) == 1


def test_grace_running_out_without_a_new_event_still_revokes(
    webhook, product, dunning, django_capture_on_commit_callbacks
):
    buyer = Buyer(webhook, email=EMAIL, start=int(time.time()) - 3 * 86400)
    buyer.checkout_paid()
    run_all()
    invoice = buyer.failed(1)
    buyer.failed(2, invoice=invoice)
    buyer.failed(3, invoice=invoice)
    run_all()
    assert not product.fake.messages(webhooks.REVOKED)  # N failures, grace not over
    assert states.dunning_sweep() == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert states.dunning_sweep(now=timezone.now() + timedelta(days=8)) == 1
    run_all()
    assert len(product.fake.messages(webhooks.REVOKED)) == 1
    assert states.dunning_sweep(now=timezone.now() + timedelta(days=9)) == 0


def test_one_failed_charge_never_revokes(webhook, product, dunning):
    dunning.DUNNING_MAX_FAILURES = 1  # even a policy of one failure keeps the grace
    buyer = Buyer(webhook, email=EMAIL)
    buyer.checkout_paid()
    run_all()
    buyer.failed(1)
    buyer.send("customer.subscription.updated", buyer.sub("past_due"))
    run_all()
    assert not product.fake.messages(webhooks.REVOKED)
    assert buyer.customer().onboarding_state == "active"


def test_cancellation_revokes_and_the_body_is_compact_json(buyer, product):
    buyer.checkout_paid()
    run_all()
    buyer.send("customer.subscription.deleted", buyer.sub("canceled"))
    run_all()
    revoked = product.fake.messages(webhooks.REVOKED)
    assert len(revoked) == 1
    assert json.loads(revoked[0].raw)["data"]["reason"].startswith("the subscription ended")
    assert buyer.customer().onboarding_state == "revoked"


def test_an_endpoint_refusing_our_signature_holds_back_no_other_endpoint(buyer, product):
    """A 401 from one endpoint (a stale secret) is that endpoint's alert and retries; the
    channel every endpoint shares is not paused, so the other endpoint provisions."""
    from devkit.fakes.product import FakeProduct
    from provisioning.endpoints import new_secret
    from provisioning.models import ProductEndpoint

    second = FakeProduct().start()
    try:
        ProductEndpoint.objects.create(url=second.endpoint_url, secret=new_secret())
        product.fake.fail(401, seconds=600)
        buyer.checkout_paid()
        run_all()
        rows = OutboxMessage.objects.filter(channel=webhooks.CHANNEL, kind=webhooks.ENTITLED)
        assert not rows.filter(state=OutboxState.PAUSED).exists()
        assert rows.get(payload__endpoint=product.endpoint.pk).state == OutboxState.FAILED
        assert len(second.messages(webhooks.ENTITLED, ok=True)) == 1
        assert buyer.customer().onboarding_state == "active"
        key = f"product_endpoint_auth:{product.endpoint.pk}"
        assert Alert.objects.get(key=key, state="open")
    finally:
        second.stop()
