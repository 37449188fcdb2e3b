"""billing/shapes.py: one reading of every API version's shapes, from 2024-06-20 to the
newest, on objects rendered from Stripe's own examples (devkit.stripe_events)."""

from __future__ import annotations

import pytest

from billing import shapes
from devkit import stripe_events as events

NEWEST, LEGACY = "2026-08-26.dahlia", events.LEGACY


def _in(version: str, obj: dict) -> dict:
    return events.render(obj, version)


@pytest.mark.parametrize("version", [NEWEST, LEGACY])
def test_a_subscriptions_period_and_plan_in_every_version(version):
    sub = _in(version, events.subscription("cus_1", period_end=1_900_000_000, plan_id="plan_x"))
    assert ("current_period_end" in sub) == (version == LEGACY)
    assert shapes.subscription_period(sub) == (1_900_000_000 - 30 * 86400, 1_900_000_000)
    summary = shapes.subscription_summary(sub)
    assert (summary["plan_id"], summary["period_end"]) == ("plan_x", 1_900_000_000)


def test_a_subscription_with_several_items_is_paid_until_its_last_items_end():
    sub = events.subscription("cus_1", period_end=1_900_000_000)
    later = {**sub["items"]["data"][0], "current_period_end": 1_900_086_400}
    sub["items"]["data"].append(later)
    assert shapes.subscription_period_end(sub) == 1_900_086_400


@pytest.mark.parametrize("version", [NEWEST, LEGACY])
def test_an_invoices_subscription_payment_and_paid_in_every_version(version):
    invoice = events.invoice(
        "cus_1", subscription_id="sub_1", status="paid", charge="ch_1", payment_intent="pi_1"
    )
    rendered = _in(version, invoice)
    assert shapes.invoice_subscription_id(rendered) == "sub_1"
    assert shapes.invoice_is_paid(rendered) is True
    assert shapes.invoice_is_paid({**rendered, "status": "open", "paid": False}) is False
    if version == LEGACY:
        assert shapes.invoice_payment_ids(rendered) == ("ch_1", "pi_1")
        assert shapes.charge_id_of(rendered) == "ch_1"
    else:
        assert "paid" not in rendered and "charge" not in rendered
        assert shapes.invoice_payment_ids(rendered) is None  # ask InvoicePayments
        expanded = {
            **rendered,
            "payments": {"data": [events.invoice_payment(invoice, payment_intent="pi_1")]},
        }
        assert shapes.invoice_payment_ids(expanded) == ("", "pi_1")


@pytest.mark.parametrize("version", [NEWEST, LEGACY])
def test_a_charges_and_a_payment_intents_invoice_in_every_version(version):
    charge = _in(version, events.charge("cus_1", invoice_id="in_1"))
    intent = _in(version, events.payment_intent("cus_1", invoice_id="in_1"))
    one_off = _in(version, events.payment_intent("cus_1"))
    if version == LEGACY:
        assert shapes.linked_invoice_id(charge) == shapes.linked_invoice_id(intent) == "in_1"
        assert shapes.linked_invoice_id(one_off) == ""
    else:  # removed: the shape does not say, the lookups ask Stripe
        assert shapes.linked_invoice_id(charge) is None
        assert shapes.linked_invoice_id(intent) is None


def test_an_invoice_payment_names_its_invoice_and_whether_it_pays_it():
    invoice = events.invoice("cus_1", subscription_id="sub_1", status="paid", amount=2000)
    payment = events.invoice_payment(invoice)
    assert shapes.linked_invoice_id(payment) == invoice["id"]
    assert shapes.invoice_payment_pays_in_full(payment)
    assert not shapes.invoice_payment_pays_in_full(events.invoice_payment(invoice, amount=500))
    with pytest.raises(ValueError):
        events.render(payment, LEGACY)  # InvoicePayments do not exist before basil


def test_an_email_from_whatever_the_object_carries():
    assert shapes.email_of(events.customer(email="a@example.test")) == "a@example.test"
    invoice = events.invoice("cus_1", subscription_id=None, customer_email="b@example.test")
    assert shapes.email_of(invoice) == "b@example.test"
    assert shapes.email_of(events.charge("cus_1", email="c@example.test")) == "c@example.test"
    assert shapes.email_of(events.charge("cus_1")) == ""


def test_a_thin_event_names_its_object_and_its_snapshot_type():
    thin = events.thin_event("v1.customer.updated", "customer", "cus_1", created=1_800_000_000)
    assert shapes.is_thin(thin) and not shapes.is_thin(events.event("customer.updated", {}))
    assert shapes.thin_related(thin) == ("customer", "cus_1")
    assert shapes.snapshot_type(thin["type"]) == "customer.updated"
    assert shapes.thin_created(thin["created"]).timestamp() == 1_800_000_000
    assert shapes.thin_created("yesterday") is None


def test_djstripe_gets_the_fields_it_still_reads():
    sub = shapes.for_djstripe(events.subscription("cus_1", period_end=1_900_000_000))
    assert sub["current_period_end"] == 1_900_000_000
    invoice = shapes.for_djstripe(events.invoice("cus_1", subscription_id="sub_1"))
    assert (invoice["paid"], invoice["subscription"]) == (True, "sub_1")
