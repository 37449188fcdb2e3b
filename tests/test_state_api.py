"""The account-state API: id forms, tokens, scope, rate limit, confidence; and ask_billing."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from openapi_spec_validator import validate

from audit.models import AuditEntry
from console.api_tokens import api_token_create, api_token_revoke
from console.models import ApiToken
from customers.models import MatchState
from tests.console_support import handler_run, outbox, stripe_event, ticket
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(owner):
    return api_token_create(actor=owner, name="support chatbot")[1]


@pytest.fixture
def paid_customer():
    now = timezone.now()
    return CustomerFactory(
        stripe_customer_id="cus_Paid1",
        product_user_id="user-42",
        status="active",
        plan_id="price_pro",
        plan_name="Pro",
        current_period_end=now + timedelta(days=20),
        last_payment_status="succeeded",
        last_payment_at=now - timedelta(days=10),
        latest_invoice_id="in_1",
        billing_confirmed_at=now - timedelta(minutes=5),
        match_state=MatchState.LINKED_BY_STRIPE_ID,
        onboarding_state="active",
    )


def get_state(client, ref, raw=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {raw}"} if raw else {}
    return client.get(f"/api/v1/customers/{ref}/state", **headers)


def test_each_id_form_resolves_to_the_same_customer(client, token, paid_customer):
    ticket(customer=paid_customer)
    for ref in ("cus_Paid1", "user-42", str(paid_customer.pk)):
        response = get_state(client, ref, token)
        assert response.status_code == 200, ref
        body = response.json()
        assert body["customer"]["id"] == str(paid_customer.pk)
    assert body["billing_status"] == "active" and body["access"] == "entitled"
    assert body["plan"] == {"id": "price_pro", "name": "Pro"}
    assert body["last_payment"]["status"] == "succeeded"
    assert body["open_tickets"] == 1
    assert (body["confidence"], body["confidence_reasons"]) == ("confirmed", [])
    assert response["Cache-Control"] == "no-store"
    assert ApiToken.objects.get().use_count == 3


def test_unknown_id_is_404(client, token):
    assert get_state(client, "cus_Nobody", token).status_code == 404
    assert get_state(client, "00000000-0000-0000-0000-000000000000", token).status_code == 404


def test_missing_revoked_and_wrong_scope_tokens_are_refused(client, owner, token, paid_customer):
    assert get_state(client, "cus_Paid1").status_code == 401
    assert get_state(client, "cus_Paid1", "sbk_deadbeef_not-a-token").status_code == 401
    # a session login is not an API credential
    client.force_login(owner)
    assert get_state(client, "cus_Paid1").status_code == 401

    api_token_revoke(actor=owner, token_pk=ApiToken.objects.get().pk, reason="leaked")
    assert get_state(client, "cus_Paid1", token).status_code == 401
    assert AuditEntry.objects.filter(action="customers.api_token.revoked").count() == 1

    other, raw = api_token_create(actor=owner, name="future write client")
    ApiToken.objects.filter(pk=other.pk).update(scopes="")  # a token without the read scope
    response = get_state(client, "cus_Paid1", raw)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "insufficient_scope"


def test_only_owners_create_tokens_and_only_a_hash_is_stored(finance_admin, owner):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        api_token_create(actor=finance_admin, name="x")
    token, raw = api_token_create(actor=owner, name="widget")
    assert raw not in token.token_hash and token.token_hash != raw
    assert not ApiToken.objects.filter(token_hash__contains=raw[-20:]).exists()
    entry = AuditEntry.objects.get(action="customers.api_token.created")
    assert raw not in json.dumps(entry.data)


def test_owner_creates_a_token_in_the_admin_and_sees_it_once(client, owner):
    client.force_login(owner)
    response = client.post(
        reverse("admin:console_apitoken_add"), {"name": "help widget", "scopes": "state:read"}
    )
    assert response.status_code == 200
    raw = response.context["raw"]
    assert raw.startswith("sbk_") and raw in response.content.decode()
    listing = client.get(reverse("admin:console_apitoken_changelist")).content.decode()
    assert "help widget" in listing and raw not in listing


def test_rate_limit_answers_429_with_retry_after(client, settings, token, paid_customer):
    settings.API_RATE_LIMIT_PER_MINUTE = 3
    codes = [get_state(client, "cus_Paid1", token).status_code for _ in range(3)]
    assert codes == [200, 200, 200]
    limited = get_state(client, "cus_Paid1", token)
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60


def test_dead_crm_sync_or_conflicting_match_needs_review(client, token, paid_customer):
    outbox(customer=paid_customer, channel="crm", state="dead", last_error="HTTP 500")
    body = get_state(client, "cus_Paid1", token).json()
    assert body["confidence"] == "needs_review"
    assert any("CRM sync is dead" in r for r in body["confidence_reasons"])

    other = CustomerFactory(
        stripe_customer_id="cus_Conflict",
        match_state=MatchState.CONFLICT,
        review_reason="Stripe has no such customer",
        billing_confirmed_at=timezone.now(),
    )
    body = get_state(client, other.stripe_customer_id, token).json()
    assert body["confidence"] == "needs_review"
    assert "conflicts" in body["confidence_reasons"][0]


def test_dead_handler_run_needs_review(client, token, paid_customer):
    event = stripe_event(customer=paid_customer)
    handler_run(event, handler="crm_update", status="dead")
    assert get_state(client, "cus_Paid1", token).json()["confidence"] == "needs_review"


def test_old_confirmation_is_stale(client, settings, token, paid_customer):
    settings.API_STATE_STALE_HOURS = 24
    paid_customer.billing_confirmed_at = timezone.now() - timedelta(hours=25)
    paid_customer.save()
    body = get_state(client, "cus_Paid1", token).json()
    assert body["confidence"] == "stale" and "24 hours" in body["confidence_reasons"][0]


def test_openapi_document_is_served_and_valid(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)
    assert "/api/v1/customers/{id}/state" in document["paths"]


def ask(*args):
    out = io.StringIO()
    call_command("ask_billing", *args, stdout=out)
    return out.getvalue()


def test_ask_billing_answers_paid_failed_canceled_and_unknown(paid_customer):
    said = ask("cus_Paid1", "did my payment go through?")
    assert said.startswith("Yes, your payment went through") and "HANDOFF" not in said

    now = timezone.now()
    CustomerFactory(
        stripe_customer_id="cus_Failed",
        status="past_due",
        plan_name="Pro",
        last_payment_status="failed",
        last_payment_at=now,
        billing_confirmed_at=now,
    )
    said = ask("cus_Failed", "did my payment go through?")
    assert said.startswith("No, your last payment") and "keep access" in said
    assert "HANDOFF" not in said

    CustomerFactory(
        product_user_id="u-canceled",
        status="canceled",
        last_payment_status="succeeded",
        billing_confirmed_at=now,
    )
    said = ask("u-canceled")
    assert "has been canceled" in said and "HANDOFF" not in said

    said = ask("cus_Unknown")
    assert "couldn't find" in said and "HANDOFF" in said


def test_ask_billing_hands_off_on_needs_review_and_stale(paid_customer):
    outbox(customer=paid_customer, channel="helpdesk", state="paused", last_error="401")
    said = ask("cus_Paid1")
    assert "HANDOFF: a person must take over (needs_review" in said
    assert "went through" not in said

    CustomerFactory(
        stripe_customer_id="cus_Old",
        status="active",
        last_payment_status="succeeded",
        billing_confirmed_at=timezone.now() - timedelta(days=3),
    )
    assert "HANDOFF: a person must take over (stale" in ask("cus_Old")


def test_ask_billing_over_http_uses_the_api(live_server, token, paid_customer):
    said = ask("cus_Paid1", "--api", live_server.url, "--token", token)
    assert said.startswith("Yes, your payment went through")
