"""A reference answerer: how a bot should answer billing questions from the account state.

It answers only what the state makes certain, in plain sentences, and hands over to a
person otherwise: unknown customer, ``needs_review``, ``stale`` (which includes a Stripe
event received but not applied yet), an open dispute, a refund waiting for a decision,
a question it cannot place, and every state it has no sentence for. The internal reasons
go to the agent taking over, never to the customer.

Each answer names the question's ``kind`` (:data:`KINDS`) and the one fact it asserts
(``value``), so ``manage.py ask_billing --eval`` can score it against the truth:

- ``paying``: the access the customer has — ``entitled``, ``grace`` or ``revoked``;
- ``plan``: the plan's name, or ``""`` when no subscription is running;
- ``renewal``: ``renews:YYYY-MM-DD``, ``ends:YYYY-MM-DD`` (canceled at period end),
  ``unpaid`` (the renewal's payment failed) or ``ended``;
- ``last_payment``: the last payment's status (``succeeded``, ``failed``,
  ``partially_refunded``, ``refunded``, ``none``);
- ``refund``: ``none``, ``partially_refunded`` or ``refunded`` (of the last payment);
- ``dispute``: ``none`` (no dispute open).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

KINDS = ("paying", "plan", "renewal", "last_payment", "refund", "dispute")

# Question words -> kind, checked in this order (the first match decides): "will I get my
# money back from the dispute?" is about the dispute, "when is my next payment?" about the
# renewal, "am I paying?" about access, not the last payment.
_KEYWORDS = (
    ("dispute", ("dispute", "chargeback", "charge back", "contest")),
    ("refund", ("refund", "money back", "reimburse")),
    ("renewal", ("renew", "next payment", "next charge", "next bill", "billing date")),
    ("plan", ("plan", "tier", "which subscription")),
    ("paying", ("paying", "access", "subscription active", "still subscribed", "premium")),
    ("last_payment", ("payment", "charge", "paid", "pay", "go through", "card")),
)


def question_kind(question: str) -> str:
    """The kind of a billing question (:data:`KINDS`), ``last_payment`` for none given,
    ``other`` for one it cannot place."""
    words = " ".join((question or "").lower().split())
    if not words:
        return "last_payment"
    for kind, keys in _KEYWORDS:
        if any(key in words for key in keys):
            return kind
    return "other"


@dataclass
class Answer:
    text: str
    handoff: bool
    case: str  # paid, failed, canceled, unknown, needs_review, stale, disputed, other...
    agent_note: str = ""
    kind: str = "last_payment"
    value: str | None = None  # the fact asserted; None when handing off


def _date(value: str | None) -> str:
    return f"{datetime.fromisoformat(value):%B %-d, %Y}" if value else ""


def _day(value: str | None) -> str:
    """The ISO day (UTC) of an ISO timestamp: how the value of a date answer is kept."""
    return datetime.fromisoformat(value).astimezone(UTC).date().isoformat() if value else ""


HANDOFF = "I'm handing this conversation to a person on our team, who will get back to you."
RUNNING = ("active", "trialing", "past_due", "unpaid", "disputed")


def _handoff(kind: str, text: str, case: str, note: str) -> Answer:
    return Answer(text + " " + HANDOFF, True, case, note, kind, None)


def answer(state: dict[str, Any] | None, question: str = "") -> Answer:
    kind = question_kind(question)
    if state is None:
        return _handoff(
            kind,
            "I couldn't find an account with that id, so I can't tell you about its payments.",
            "unknown",
            "no customer has this id",
        )
    reasons = "; ".join(state.get("confidence_reasons") or [])
    if state["confidence"] == "needs_review":
        return _handoff(
            kind,
            "I can't give you a reliable answer about your billing right now.",
            "needs_review",
            reasons,
        )
    if state["confidence"] == "stale":
        # Either an update from Stripe is not applied yet, or Stripe has not confirmed
        # the state for too long: the customer hears neither the reason nor a guess.
        return _handoff(
            kind,
            "I can't be sure our payment records are up to date right now, so I won't "
            "guess about your current status.",
            "stale",
            reasons,
        )
    if kind == "other":
        return _handoff(
            kind,
            "I can't answer that one reliably from here.",
            "other",
            f"question not understood: {question[:200]}",
        )
    return _ANSWERS[kind](state)


def _disputed(state: dict[str, Any]) -> bool:
    return state["billing_status"] == "disputed" or state["last_payment"]["status"] == "disputed"


def _dispute_handoff(kind: str) -> Answer:
    # Whose money it is is being decided between the bank and us: a person answers.
    return _handoff(
        kind,
        "A payment on your account is being disputed with your bank, so a person needs "
        "to look at this.",
        "disputed",
        "a dispute is open on the customer's payment",
    )


def _plan_name(state: dict[str, Any]) -> str:
    return (state.get("plan") or {}).get("name") or ""


def _paying(state: dict[str, Any]) -> Answer:
    if _disputed(state):
        return _dispute_handoff("paying")
    access = state["access"]
    plan = _plan_name(state)
    on = f" to the {plan} plan" if plan else ""
    if access == "entitled":
        trial = " (you're on a free trial)" if state["billing_status"] == "trialing" else ""
        text = f"Yes, you have access{on}{trial}."
    elif access == "grace":
        text = (
            f"Your last payment didn't go through, but you keep access{on} for now while "
            "we retry it; updating your payment method avoids an interruption."
        )
    else:
        text = "You don't have an active paid subscription right now."
    return Answer(text, False, state["billing_status"], "", "paying", access)


def _plan(state: dict[str, Any]) -> Answer:
    plan = _plan_name(state)
    if state["billing_status"] not in RUNNING or not plan:
        if state["billing_status"] in RUNNING:  # running, and no plan name: not certain
            return _handoff("plan", "I can't see your plan's name from here.", "other", "no plan")
        return Answer("You have no active plan right now.", False, "canceled", "", "plan", "")
    return Answer(f"You're on the {plan} plan.", False, "plan", "", "plan", plan)


def _renewal(state: dict[str, Any]) -> Answer:
    status = state["billing_status"]
    end = state.get("current_period_end")
    if status not in RUNNING:
        return Answer(
            "Your subscription has ended, so it will not renew.",
            False,
            "canceled",
            "",
            "renewal",
            "ended",
        )
    if status in ("past_due", "unpaid"):
        return Answer(
            "Your renewal payment didn't go through; the subscription renews once a "
            "payment succeeds.",
            False,
            "failed",
            "",
            "renewal",
            "unpaid",
        )
    if not end:
        return _handoff("renewal", "I can't see your renewal date.", "other", "no period end")
    if state.get("cancel_at_period_end"):
        return Answer(
            f"Your subscription ends on {_date(end)}, as you asked, and won't renew.",
            False,
            "ending",
            "",
            "renewal",
            f"ends:{_day(end)}",
        )
    return Answer(
        f"Your subscription renews on {_date(end)}.",
        False,
        "renews",
        "",
        "renewal",
        f"renews:{_day(end)}",
    )


def _last_payment(state: dict[str, Any]) -> Answer:
    if _disputed(state):
        return _dispute_handoff("last_payment")
    payment = state["last_payment"]
    status = state["billing_status"]
    plan = _plan_name(state) or "your"
    plan_words = f"the {plan} plan" if plan != "your" else "your plan"
    end = _date(state.get("current_period_end"))
    value = payment["status"]
    if status == "canceled":
        return Answer(
            f"Your subscription has been canceled, so {plan_words} is no longer "
            "active and no further payments will be taken.",
            False,
            "canceled",
            "",
            "last_payment",
            value,
        )
    if payment["status"] == "succeeded" and status in ("active", "trialing"):
        text = f"Yes, your payment went through on {_date(payment['at'])}. {plan_words[0].upper() + plan_words[1:]} is active"
        if state.get("cancel_at_period_end") and end:
            text += f" until {end}, when it ends as you asked."
        else:
            text += f" and renews on {end}." if end else "."
        return Answer(text, False, "paid", "", "last_payment", value)
    if payment["status"] == "failed":
        text = f"No, your last payment on {_date(payment['at'])} did not go through."
        if state["access"] == "grace":
            text += (
                " We'll retry it automatically and you keep access for now; updating your "
                "payment method avoids an interruption."
            )
        elif state["access"] == "revoked":
            text += " Your paid features are paused until a payment succeeds."
        return Answer(text, False, "failed", "", "last_payment", value)
    if payment["status"] in ("partially_refunded", "refunded") and status in RUNNING:
        part = "part of it" if payment["status"] == "partially_refunded" else "all of it"
        return Answer(
            f"Your last payment on {_date(payment['at'])} went through, and {part} has "
            "since been refunded to you.",
            False,
            "refunded",
            "",
            "last_payment",
            value,
        )
    if payment["status"] == "none" and status == "trialing":
        return Answer(
            "You haven't been charged yet: you're on a free trial.",
            False,
            "trialing",
            "",
            "last_payment",
            value,
        )
    return _handoff(
        "last_payment",
        "I can't answer that one reliably from here.",
        "other",
        f"billing status {status}, last payment {payment['status']}",
    )


def _refund(state: dict[str, Any]) -> Answer:
    if _disputed(state):
        return _dispute_handoff("refund")
    if state.get("refund_pending"):
        return _handoff(
            "refund",
            "A refund on your account is being reviewed by our team.",
            "refund_pending",
            "a refund is requested or sent and not confirmed yet",
        )
    payment = state["last_payment"]["status"]
    if payment == "refunded":
        text = "Yes, your last payment was refunded in full."
    elif payment == "partially_refunded":
        text = "Yes, part of your last payment was refunded to you."
    else:
        payment = "none"
        text = "No refund has been made on your last payment."
    return Answer(text, False, "refund", "", "refund", payment)


def _dispute(state: dict[str, Any]) -> Answer:
    if _disputed(state):
        return _dispute_handoff("dispute")
    return Answer(
        "There's no open dispute on your payments.", False, "dispute", "", "dispute", "none"
    )


_ANSWERS = {
    "paying": _paying,
    "plan": _plan,
    "renewal": _renewal,
    "last_payment": _last_payment,
    "refund": _refund,
    "dispute": _dispute,
}
