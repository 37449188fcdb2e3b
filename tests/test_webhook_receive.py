"""Receiving Stripe webhooks: verified, stored once, acknowledged without processing."""

from __future__ import annotations

import json
import threading
import time

import django_rq
import pytest
from django.db import OperationalError, connection
from django.test import Client
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from billing.models import EventStatus, HandlerRun, StripeEvent
from customers.models import Customer
from devkit import stripe_events as events
from devkit.signing import encode, signature_header
from tests.stripe_support.fixtures import drain

pytestmark = pytest.mark.django_db


def a_customer_event():
    return events.event(
        "customer.created", events.customer(email="grace@example.test", name="Grace")
    )


def test_valid_event_is_stored_and_queued_not_processed(webhook):
    event = a_customer_event()
    response = webhook.post(event)
    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    row = StripeEvent.objects.get(stripe_id=event["id"])
    assert row.status == EventStatus.RECEIVED
    assert row.type == "customer.created"
    assert row.stripe_customer_id == event["data"]["object"]["id"]
    assert django_rq.get_queue("webhooks").count == 1
    assert not Customer.objects.exists()  # processing waits for the worker
    drain()
    customer = Customer.objects.get(stripe_customer_id=event["data"]["object"]["id"])
    assert (customer.email, customer.name) == ("grace@example.test", "Grace")


@pytest.mark.parametrize("case", ["missing", "wrong_secret", "stale", "garbage", "tampered"])
def test_bad_signatures_are_refused_and_nothing_is_stored(webhook, case):
    event = a_customer_event()
    body = encode(event)
    kwargs = {
        "missing": {"header": ""},
        "wrong_secret": {"secret": "whsec_not_the_secret"},
        "stale": {"timestamp": int(time.time()) - 301},
        "garbage": {"header": "t=abc,v1=zzz"},
        "tampered": {"header": signature_header(body, webhook.secret)},
    }[case]
    payload = body.replace(b"grace", b"mallory") if case == "tampered" else event
    response = webhook.post(payload, **kwargs)
    assert response.status_code == 400
    assert "error" in response.json()
    assert StripeEvent.objects.count() == 0
    assert django_rq.get_queue("webhooks").count == 0


def test_rotated_secret_several_v1_signatures_are_accepted(webhook, settings):
    event = a_customer_event()
    response = webhook.post(event, secret=["whsec_old_one", webhook.secret])
    assert response.status_code == 200
    assert StripeEvent.objects.filter(stripe_id=event["id"]).exists()


def test_malformed_json_and_invalid_utf8_are_400(webhook):
    assert webhook.post(b'{"id": "evt_1", "type": ').status_code == 400
    assert webhook.post(b'{"id": "evt_\xff\xfe"}').status_code == 400
    assert StripeEvent.objects.count() == 0


def test_body_over_one_megabyte_is_413(webhook):
    event = a_customer_event()
    event["data"]["object"]["metadata"] = {"padding": "x" * (2 * 1024 * 1024)}
    response = webhook.post(event)
    assert response.status_code == 413
    assert StripeEvent.objects.count() == 0


def test_unknown_event_type_is_stored_and_acknowledged(webhook):
    event = events.event(
        "radar.early_fraud_warning.created",
        {"id": "issfr_1", "object": "radar.early_fraud_warning"},
    )
    response = webhook.post(event)
    assert response.status_code == 200
    drain()
    row = StripeEvent.objects.get(stripe_id=event["id"])
    assert row.status == EventStatus.PROCESSED
    assert HandlerRun.objects.filter(event=row).count() == 0


@pytest.mark.parametrize(
    "broken",
    [
        {"type": "customer.created", "data": {"object": None}},
        {"id": "evt_nofields"},
        [1, 2, 3],
    ],
)
def test_signed_but_unusable_envelope_is_kept_never_500(webhook, broken):
    if isinstance(broken, dict) and "data" in broken:
        broken = {"id": "evt_nullobject", "created": int(time.time()), **broken}
    response = webhook.post(json.dumps(broken).encode())
    assert response.status_code == 200
    assert response.json()["received"] is False
    row = StripeEvent.objects.get()
    assert row.status == EventStatus.UNUSABLE
    assert django_rq.get_queue("webhooks").count == 0


def test_unknown_endpoint_is_404(webhook):
    response = webhook.client.post(
        "/stripe/webhook/00000000-0000-0000-0000-000000000000/",
        data=encode(a_customer_event()),
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE="t=1,v1=x",
    )
    assert response.status_code == 404


def test_get_is_not_allowed(webhook):
    assert webhook.client.get(webhook.url).status_code == 405


def test_same_event_twice_is_one_row_one_job_one_effect(webhook):
    event = a_customer_event()
    first, second = webhook.post(event), webhook.post(event)
    assert first.json()["duplicate"] is False and second.json()["duplicate"] is True
    row = StripeEvent.objects.get(stripe_id=event["id"])
    assert row.delivery_count == 2
    assert django_rq.get_queue("webhooks").count == 1
    drain()
    assert Customer.objects.filter(stripe_customer_id=event["data"]["object"]["id"]).count() == 1
    assert HandlerRun.objects.filter(event=row, handler="customer_projection").count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_deliveries_of_one_event_make_one_effect(webhook):
    event = a_customer_event()
    body = encode(event)
    header = signature_header(body, webhook.secret)
    results = []
    barrier = threading.Barrier(6)

    def deliver():
        client = Client()
        barrier.wait()
        response = client.post(
            webhook.url, data=body, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
        )
        results.append(response.status_code)
        connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [200] * 6
    row = StripeEvent.objects.get(stripe_id=event["id"])
    assert row.delivery_count == 6
    assert django_rq.get_queue("webhooks").count == 1
    drain()
    assert Customer.objects.count() == 1


# --- the nesting limit -----------------------------------------------------------------


def _nested(levels: int, inner: str) -> object:
    return json.loads("[" * levels + inner + "]" * levels)


@pytest.mark.parametrize(
    ("levels", "inner", "stored"),
    [
        # The envelope is depth 1 and its "deep" key's list depth 2: 63 lists put the
        # scalar at depth 65, one past MAX_JSON_DEPTH; an empty innermost list is at 64.
        (62, "1", True),
        (63, "", True),
        (63, "1", False),
        (200, "1", False),
    ],
)
def test_nesting_past_the_limit_is_400_and_up_to_it_is_stored(webhook, levels, inner, stored):
    event = a_customer_event()
    event["deep"] = _nested(levels, inner)
    response = webhook.post(event)
    assert response.status_code == (200 if stored else 400)
    assert StripeEvent.objects.filter(stripe_id=event["id"]).exists() is stored


def _too_deep_reference(value: object, limit: int, depth: int = 1) -> bool:
    """The rule in its plainest form (recursive): some item, scalar or not, is deeper than
    ``limit``."""
    if depth > limit:
        return True
    children = value.values() if isinstance(value, dict) else value
    if not isinstance(value, dict | list):
        return False
    return any(_too_deep_reference(child, limit, depth + 1) for child in children)


json_tree = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner, max_size=3)
    ),
    max_leaves=30,
)


@hypothesis_settings(max_examples=400, deadline=None, database=None)
@given(value=json_tree, limit=st.integers(min_value=1, max_value=8))
def test_depth_check_agrees_with_the_plain_rule(value, limit):
    from billing.views import _too_deep

    assert _too_deep(value, limit) is _too_deep_reference(value, limit)


@hypothesis_settings(max_examples=200, deadline=None, database=None)
@given(
    levels=st.integers(min_value=55, max_value=70),
    inner=st.sampled_from(["", "1", '"{[{["', "{}", '{"a": []}']),
    wrap=st.sampled_from(["[%s]", '{"k": %s}', '[1, {"k": %s}, "]]]"]']),
)
def test_body_check_agrees_with_the_plain_rule_around_the_limit(levels, inner, wrap):
    """The bracket-count shortcut and the walk give the same answer as the plain rule,
    whatever quoted brackets add to the count."""
    from billing.views import _NOT_JSON, MAX_JSON_DEPTH, _parse_json

    body = wrap % ("[" * levels + inner + "]" * levels)
    too_deep = _too_deep_reference(json.loads(body), MAX_JSON_DEPTH)
    assert (_parse_json(body) is _NOT_JSON) is too_deep


# --- the prepared insert ---------------------------------------------------------------


def _prepared_inserts() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements "
            "WHERE statement LIKE '%%INSERT INTO billing_stripeevent%%'"
        )
        return cursor.fetchone()[0]


def _preparing(monkeypatch, prepared: bool) -> None:
    """What WEBHOOK_INSERT_PREPARED sets (prepare_threshold 0 or Django's None), on the
    connection the test client's requests use."""
    connection.ensure_connection()
    monkeypatch.setattr(connection.connection, "prepare_threshold", 0 if prepared else None)


def test_the_setting_prepares_on_first_use_by_default(settings):
    assert settings.DATABASES["default"]["OPTIONS"]["prepare_threshold"] == 0


@pytest.mark.parametrize("prepared", [True, False])
def test_the_insert_is_prepared_once_per_connection_or_not_at_all(webhook, monkeypatch, prepared):
    _preparing(monkeypatch, prepared)
    sent = [a_customer_event() for _ in range(3)]
    answers = [webhook.post(event).json() for event in sent + sent[:1]]
    assert answers == [{"received": True, "duplicate": False}] * 3 + [
        {"received": True, "duplicate": True}
    ]
    assert StripeEvent.objects.filter(stripe_id__in=[e["id"] for e in sent]).count() == 3
    assert StripeEvent.objects.get(stripe_id=sent[0]["id"]).delivery_count == 2
    assert _prepared_inserts() == (1 if prepared else 0)


@pytest.mark.django_db(transaction=True)  # autocommit, as in production
@pytest.mark.parametrize("prepared", [True, False])
def test_a_nul_escape_is_400_and_the_next_delivery_is_stored(webhook, monkeypatch, prepared):
    # PostgreSQL's jsonb refuses \u0000 whichever way the insert is sent.
    _preparing(monkeypatch, prepared)
    event = a_customer_event()
    event["data"]["object"]["metadata"] = {"note": "a\u0000b"}
    response = webhook.post(event)
    assert response.status_code == 400
    assert "cannot be stored" in response.json()["error"]
    assert not StripeEvent.objects.filter(stripe_id=event["id"]).exists()
    following = a_customer_event()
    assert webhook.post(following).status_code == 200
    assert StripeEvent.objects.filter(stripe_id=following["id"]).exists()


def test_an_execute_wrapper_sees_the_insert(webhook):
    # Query counters and fault injection wrap Django's cursors; the server-binding cursor
    # of the insert is one of them, so a refused insert fails the request, storing nothing.
    seen = []

    def refuse(execute, sql, params, many, context):
        seen.append(sql)
        if "INSERT INTO billing_stripeevent" in sql:
            raise OperationalError("injected: the database went away")
        return execute(sql, params, many, context)

    event = a_customer_event()
    with connection.execute_wrapper(refuse):
        with pytest.raises(OperationalError):
            webhook.post(event)
    assert any("INSERT INTO billing_stripeevent" in sql for sql in seen)
    assert not StripeEvent.objects.filter(stripe_id=event["id"]).exists()
