"""Masking of card numbers and credentials in free text (audit data, alerts, log lines).

Kept free of Django imports: the logging filter uses it before the app registry is ready.
"""

from __future__ import annotations

import re

# 13-19 digits, optionally grouped by spaces or dashes: the shape of a card number.
_CARD_CANDIDATE = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def mask_card_numbers(text: str) -> str:
    """Replace anything that is a valid card number (Luhn) by its last four digits."""

    def replace(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if 13 <= len(digits) <= 19 and _luhn_ok(digits):
            return f"****{digits[-4:]}"
        return match.group(0)

    return _CARD_CANDIDATE.sub(replace, text)


# Credentials with a recognisable shape: Stripe keys and webhook secrets, our own API
# tokens, bearer headers, PaymentIntent/SetupIntent client secrets (also seen inside
# redirect URLs), and webhook URLs whose path is the secret: anything under
# hooks.slack.com, and Slack-style ``/services/T.../B.../<secret>`` paths on any host.
_CREDENTIAL = re.compile(
    r"\b(?:(?:sk|rk|pk)_(?:test|live)_[A-Za-z0-9]+|whsec_[A-Za-z0-9_]+|sbk_[A-Za-z0-9_-]+"
    r"|(?:pi|seti)_[A-Za-z0-9]+_secret_[A-Za-z0-9]+)"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}"
    r"|(?<=hooks\.slack\.com/)[^\s\"'<>]+"
    r"|(?<=/services/)T[A-Za-z0-9]+/B[A-Za-z0-9]+/[A-Za-z0-9]+"
)


def mask_credentials(text: str) -> str:
    return _CREDENTIAL.sub("***", text)


def mask_text(text: str) -> str:
    """Card numbers to their last four digits, credentials to ***."""
    return mask_credentials(mask_card_numbers(text))
