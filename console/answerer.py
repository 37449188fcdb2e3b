"""A reference answerer: how a bot should answer billing questions from the account state.

It answers only what the state makes certain, in plain sentences, and hands over to a
person otherwise: unknown customer, ``needs_review``, ``stale``, and every state it has
no sentence for (refunds, disputes, action required…). The internal reasons go to the
agent taking over, never to the customer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass
class Answer:
    text: str
    handoff: bool
    case: str  # paid, failed, canceled, unknown, needs_review, stale, other
    agent_note: str = ""


def _date(value: str | None) -> str:
    return f"{datetime.fromisoformat(value):%B %-d, %Y}" if value else ""


HANDOFF = "I'm handing this conversation to a person on our team, who will get back to you."


def answer(state: dict[str, Any] | None, question: str = "") -> Answer:
    if state is None:
        return Answer(
            "I couldn't find an account with that id, so I can't tell you about its "
            "payments. " + HANDOFF,
            True,
            "unknown",
            "no customer has this id",
        )
    reasons = "; ".join(state.get("confidence_reasons") or [])
    if state["confidence"] == "needs_review":
        return Answer(
            "I can't give you a reliable answer about your billing right now. " + HANDOFF,
            True,
            "needs_review",
            reasons,
        )
    if state["confidence"] == "stale":
        confirmed = _date(state.get("confirmed_at"))
        since = f" since {confirmed}" if confirmed else ""
        return Answer(
            f"Our payment records haven't been confirmed{since}, so I can't be sure "
            "of your current status. " + HANDOFF,
            True,
            "stale",
            reasons,
        )
    payment = state["last_payment"]
    status = state["billing_status"]
    plan = (state["plan"] or {}).get("name") or "your"
    plan_words = f"the {plan} plan" if plan != "your" else "your plan"
    end = _date(state.get("current_period_end"))
    if status == "canceled":
        return Answer(
            f"Your subscription has been canceled, so {plan_words} is no longer "
            "active and no further payments will be taken.",
            False,
            "canceled",
        )
    if payment["status"] == "succeeded" and status in ("active", "trialing"):
        text = f"Yes, your payment went through on {_date(payment['at'])}. {plan_words.capitalize()} is active"
        if state.get("cancel_at_period_end") and end:
            text += f" until {end}, when it ends as you asked."
        else:
            text += f" and renews on {end}." if end else "."
        return Answer(text, False, "paid")
    if payment["status"] == "failed":
        text = f"No, your last payment on {_date(payment['at'])} did not go through."
        if state["access"] == "grace":
            text += (
                " We'll retry it automatically and you keep access for now; updating your "
                "payment method avoids an interruption."
            )
        elif state["access"] == "revoked":
            text += " Your paid features are paused until a payment succeeds."
        return Answer(text, False, "failed")
    return Answer(
        "I can't answer that one reliably from here. " + HANDOFF,
        True,
        "other",
        f"billing status {status}, last payment {payment['status']}",
    )
