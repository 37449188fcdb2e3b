"""Amounts as Stripe gives them (an integer in the currency's smallest unit) for people.

Stripe's amounts are in minor units, and how many minor units make one major unit depends
on the currency (https://stripe.com/docs/currencies): none for the zero-decimal ones
(¥5000 is ``5000``), a thousand for the three-decimal ones (5.124 KWD is ``5124``), a
hundred for everything else. Dividing by 100 everywhere prints yen 100× too small, so
every amount shown or parsed goes through here.
"""

from __future__ import annotations

from decimal import Decimal

# Stripe's zero-decimal and three-decimal currencies (lowercase, as Stripe sends them).
# ISK, HUF and TWD have special rules in Stripe's docs (whole units only in some places),
# but their API amounts still have two decimals.
ZERO_DECIMAL = frozenset(
    {
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    }
)
THREE_DECIMAL = frozenset({"bhd", "jod", "kwd", "omr", "tnd"})


def decimals(currency: str) -> int:
    """How many digits of ``currency``'s amounts are after the decimal point."""
    code = (currency or "").lower()
    if code in ZERO_DECIMAL:
        return 0
    if code in THREE_DECIMAL:
        return 3
    return 2


def to_major(amount: int, currency: str) -> Decimal:
    """Decimal('19.99') from 1999 'usd'; Decimal('5000') from 5000 'jpy'."""
    return Decimal(int(amount)).scaleb(-decimals(currency))


def to_minor(value: Decimal, currency: str) -> Decimal:
    """The inverse of :func:`to_major` for a typed amount; not rounded, so the caller can
    tell an amount with too many decimals (``to_minor(Decimal("1.5"), "jpy")``) apart."""
    return value.scaleb(decimals(currency))


def format_money(amount: int | None, currency: str) -> str:
    """'1,234.50 USD' from 123450 'usd', '5,000 JPY' from 5000 'jpy', '' from None."""
    if amount is None:
        return ""
    places = decimals(currency)
    return f"{to_major(amount, currency):,.{places}f} {(currency or '').upper()}".strip()
