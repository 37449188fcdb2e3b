"""Amounts in Stripe's smallest unit, shown and typed in the currency's own major unit."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.forms import RefundForm
from billing.projection import subscription_fields
from config.money import format_money, to_major, to_minor
from support.content import amount_of


@pytest.mark.parametrize(
    ("amount", "currency", "shown"),
    [
        (1999, "usd", "19.99 USD"),
        (123450, "eur", "1,234.50 EUR"),
        (0, "usd", "0.00 USD"),
        (5000, "jpy", "5,000 JPY"),
        (5000, "JPY", "5,000 JPY"),
        (700, "krw", "700 KRW"),
        (5120, "kwd", "5.120 KWD"),
        (1999, "", "19.99"),
        (None, "usd", ""),
    ],
)
def test_format_money_knows_how_many_decimals_a_currency_has(amount, currency, shown):
    assert format_money(amount, currency) == shown


def test_major_and_minor_units_round_trip():
    assert to_major(1999, "usd") == Decimal("19.99")
    assert to_major(5000, "jpy") == Decimal("5000")
    assert to_major(5124, "bhd") == Decimal("5.124")
    assert to_minor(Decimal("19.99"), "usd") == 1999
    assert to_minor(Decimal("5000"), "jpy") == 5000
    assert to_minor(Decimal("5.124"), "omr") == 5124


def test_every_place_that_shows_an_amount_shows_yen_as_yen():
    assert amount_of({"amount_due": 5000, "currency": "jpy"}) == "5,000 JPY"
    assert amount_of({"amount": 1999, "currency": "usd"}) == "19.99 USD"
    plan = subscription_fields(
        {
            "id": "sub_1",
            "plan": {"id": "price_1", "amount": 5000, "currency": "jpy", "interval": "month"},
        }
    )
    assert plan["plan_name"] == "5,000 JPY/month"


@pytest.mark.parametrize(
    ("typed", "currency", "minor"),
    [("12.50", "usd", 1250), ("5000", "jpy", 5000), ("5,000", "jpy", 5000), ("5.120", "kwd", 5120)],
)
def test_refund_form_reads_the_amount_in_the_charges_currency(typed, currency, minor):
    form = RefundForm(
        {
            "amount": typed,
            "reason_code": "duplicate",
            "note": "n",
            "key": "6f1d3c1e-4b7a-4e59-9a55-0c2f5b0c9e41",
        },
        currency=currency,
    )
    assert form.is_valid(), form.errors
    assert form.cleaned_data["amount"] == minor


def test_refund_form_refuses_fractions_of_a_yen():
    form = RefundForm(
        {
            "amount": "12.5",
            "reason_code": "duplicate",
            "note": "n",
            "key": "6f1d3c1e-4b7a-4e59-9a55-0c2f5b0c9e41",
        },
        currency="jpy",
    )
    assert not form.is_valid()
    assert "too many decimals" in str(form.errors["amount"])
