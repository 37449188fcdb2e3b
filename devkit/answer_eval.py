"""The chatbot held to live state: scenarios, their truth, and the scorer behind
``manage.py ask_billing --eval``.

Each scenario is one customer of the demo's kinds (paying, trialing, failed and
recovered, refunded, disputed, canceled, matched by email only, a match conflict) plus
a *fresh change* delivered by webhook (a plan change, a renewal date moved, a failed or
recovered payment, a partial refund, a dispute opened or won, a cancellation at period
end, an event received but not applied yet). The events are built from Stripe's example
objects (:mod:`devkit.stripe_events`), signed with the endpoint's secret and posted to
the real webhook URL.

The truth is what the scenario itself made Stripe say, written down when the events are
built: it never reads the customer record or the account state the answerer reads. A
question's truth is a value (``console.answerer`` documents the values per kind) or
:data:`ESCALATE` when the state is uncertain or conflicting and a person must answer.

An answer is scored:

- **correct**: the expected value, or a hand-off where one is expected;
- **wrong** (confident wrong): a value that is not the truth, or a confident answer
  where the state called for a person;
- **escalated**: a hand-off where a confident answer was possible (safe, but not
  counted as correct).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from console.answerer import KINDS, Answer
from devkit import stripe_events as events
from devkit.management.commands.demo_stripe_seed import NAMES as DEMO_NAMES

ESCALATE = "ESCALATE"
CORRECT, WRONG, ESCALATED = "correct", "wrong", "escalated"
TARGET = 0.9

# Several ways a customer asks each kind; customer n gets phrasing n (mod the count).
QUESTIONS: dict[str, tuple[str, ...]] = {
    "paying": (
        "Do I still have access to my account?",
        "Am I a paying customer?",
        "Is my subscription active?",
    ),
    "plan": ("Which plan am I on?", "What tier is my subscription?"),
    "renewal": ("When does my subscription renew?", "When is my next payment?"),
    "last_payment": ("Did my last payment go through?", "Was my card charged?"),
    "refund": ("What's the status of my refund?", "Did I get a refund?"),
    "dispute": (
        "Is there a dispute on my payment?",
        "Will I get my money back from the chargeback?",
    ),
}
PLANS = {
    "Basic": ("plan_demo_basic", 900),
    "Pro": ("plan_demo_pro", 2900),
    "Team": ("plan_demo_team", 4900),
}
DAY = 86400


def day(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).date().isoformat()


@dataclass
class Scenario:
    """One customer: its events in Stripe's order, and what each question's answer is."""

    name: str
    email: str
    customer_id: str
    events: list[dict[str, Any]]
    truth: dict[str, str]
    # Delivered, and deliberately not processed: the state is older than Stripe's word.
    held: list[dict[str, Any]] = field(default_factory=list)
    # The truth once the held events are applied (a running worker may apply them).
    truth_if_applied: dict[str, str] | None = None
    # Records the product made before Stripe knew the person (same email).
    records_before: int = 0

    @property
    def held_ids(self) -> list[str]:
        return [e["id"] for e in self.held]


def _truth(
    *,
    paying: str,
    plan: str,
    renewal: str,
    last_payment: str,
    refund: str = "none",
    dispute: str = "none",
) -> dict[str, str]:
    return {
        "paying": paying,
        "plan": plan,
        "renewal": renewal,
        "last_payment": last_payment,
        "refund": refund,
        "dispute": dispute,
    }


ALL_ESCALATE = {kind: ESCALATE for kind in KINDS}


class _Customer:
    """A paying subscriber, built event by event like Stripe tells it: customer.created,
    subscription created (incomplete), payment intent succeeded, first invoice paid,
    subscription active. Events are ten seconds apart from ``start``."""

    def __init__(self, email: str, name: str, plan: str, start: int, *, trial: bool = False):
        self.email = email
        self.plan = plan
        self.t = start
        self.cus = events.customer(email=email, name=name)
        self.id = self.cus["id"]
        self.sub_id, self.item_id = events.new_id("sub"), events.new_id("si")
        self.period_start = start
        self.period_end = start + (14 if trial else 30) * DAY
        self.out: list[dict[str, Any]] = [self._event("customer.created", self.cus)]
        if trial:
            self.invoice_id = None
            self.add(
                "customer.subscription.created",
                self.sub("trialing", trial_end=self.period_end),
            )
            return
        self.charge_id, pi_id = events.new_id("ch"), events.new_id("pi")
        amount = PLANS[plan][1]
        first = events.invoice(
            self.id,
            subscription_id=self.sub_id,
            billing_reason="subscription_create",
            amount=amount,
            charge=self.charge_id,
            payment_intent=pi_id,
            period_start=self.period_start,
            period_end=self.period_end,
        )
        self.invoice_id = first["id"]
        self.charge = events.charge(
            self.id,
            amount=amount,
            charge_id=self.charge_id,
            payment_intent=pi_id,
            invoice_id=first["id"],
        )
        pi = events.payment_intent(
            self.id,
            amount=amount,
            pi_id=pi_id,
            latest_charge=self.charge_id,
            invoice_id=first["id"],
        )
        self.add("customer.subscription.created", self.sub("incomplete"))
        self.add("payment_intent.succeeded", pi)
        self.add("invoice.paid", first)
        self.add("customer.subscription.updated", self.sub("active"))

    def _event(self, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = events.event(event_type, obj, created=self.t)
        self.t += 10
        return event

    def add(self, event_type: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = self._event(event_type, obj)
        self.out.append(event)
        return event

    def sub(self, status: str, **kw: Any) -> dict[str, Any]:
        plan_id, amount = PLANS[kw.pop("plan", self.plan)]
        kw.setdefault("latest_invoice", self.invoice_id)
        kw.setdefault("period_start", self.period_start)
        kw.setdefault("period_end", self.period_end)
        return events.subscription(
            self.id,
            status=status,
            sub_id=self.sub_id,
            item_id=self.item_id,
            plan_id=plan_id,
            amount=amount,
            nickname=plan_id.replace("plan_demo_", "").title(),
            **kw,
        )

    def renewal(self, status: str) -> dict[str, Any]:
        return events.invoice(
            self.id,
            subscription_id=self.sub_id,
            status=status,
            amount=PLANS[self.plan][1],
            period_start=self.period_end,
            period_end=self.period_end + 30 * DAY,
        )

    def scenario(self, name: str, truth: dict[str, str], **kw: Any) -> Scenario:
        return Scenario(name, self.email, self.id, self.out, truth, **kw)


def _renewal_moved(c: _Customer) -> Scenario:
    c.period_end += 15 * DAY  # e.g. a billing-cycle change in the dashboard
    c.add("customer.subscription.updated", c.sub("active"))
    return c.scenario(
        "renewal moved",
        _truth(
            paying="entitled",
            plan=c.plan,
            renewal=f"renews:{day(c.period_end)}",
            last_payment="succeeded",
        ),
    )


def _plan_change(c: _Customer) -> Scenario:
    c.add("customer.subscription.updated", c.sub("active", plan="Team"))
    return c.scenario(
        "plan changed",
        _truth(
            paying="entitled",
            plan="Team",
            renewal=f"renews:{day(c.period_end)}",
            last_payment="succeeded",
        ),
    )


def _failed(c: _Customer) -> Scenario:
    renewal = c.renewal("open")
    c.add("invoice.payment_failed", renewal)
    c.add("customer.subscription.updated", c.sub("past_due", latest_invoice=renewal["id"]))
    return c.scenario(
        "payment failed",
        _truth(paying="grace", plan=c.plan, renewal="unpaid", last_payment="failed"),
    )


def _recovered(c: _Customer) -> Scenario:
    renewal = c.renewal("open")
    c.add("invoice.payment_failed", renewal)
    c.add("customer.subscription.updated", c.sub("past_due", latest_invoice=renewal["id"]))
    paid = {
        **renewal,
        "status": "paid",
        "amount_paid": renewal["amount_due"],
        "amount_remaining": 0,
    }
    c.add("invoice.paid", paid)
    c.period_start, c.period_end = c.period_end, c.period_end + 30 * DAY
    c.add("customer.subscription.updated", c.sub("active", latest_invoice=renewal["id"]))
    return c.scenario(
        "payment recovered",
        _truth(
            paying="entitled",
            plan=c.plan,
            renewal=f"renews:{day(c.period_end)}",
            last_payment="succeeded",
        ),
    )


def _refunded(c: _Customer) -> Scenario:
    part = c.charge["amount"] // 3
    c.add("charge.refunded", {**c.charge, "amount_refunded": part, "refunded": False})
    return c.scenario(
        "partially refunded",
        _truth(
            paying="entitled",
            plan=c.plan,
            renewal=f"renews:{day(c.period_end)}",
            last_payment="partially_refunded",
            refund="partially_refunded",
        ),
    )


def _dispute_opened(c: _Customer) -> Scenario:
    c.add("charge.dispute.created", events.dispute(c.charge))
    # The money is contested: whether the customer pays, gets it back or owes it is a
    # person's answer. The plan and the subscription's renewal date are still certain.
    return c.scenario(
        "dispute opened",
        _truth(
            paying=ESCALATE,
            plan=c.plan,
            renewal=f"renews:{day(c.period_end)}",
            last_payment=ESCALATE,
            refund=ESCALATE,
            dispute=ESCALATE,
        ),
    )


def _dispute_won(c: _Customer) -> Scenario:
    opened = events.dispute(c.charge)
    c.add("charge.dispute.created", opened)
    c.add("charge.dispute.closed", {**opened, "status": "won"})
    return c.scenario(
        "dispute won",
        _truth(
            paying="entitled",
            plan=c.plan,
            renewal=f"renews:{day(c.period_end)}",
            last_payment="succeeded",
        ),
    )


def _cancel_at_period_end(c: _Customer) -> Scenario:
    c.add("customer.subscription.updated", c.sub("active", cancel_at_period_end=True))
    return c.scenario(
        "cancels at period end",
        _truth(
            paying="entitled",
            plan=c.plan,
            renewal=f"ends:{day(c.period_end)}",
            last_payment="succeeded",
        ),
    )


def _canceled(c: _Customer) -> Scenario:
    c.add("customer.subscription.deleted", c.sub("canceled"))
    return c.scenario(
        "canceled",
        _truth(paying="revoked", plan="", renewal="ended", last_payment="succeeded"),
    )


def _trialing(c: _Customer) -> Scenario:
    return c.scenario(
        "trial started",
        _truth(
            paying="entitled",
            plan=c.plan,
            renewal=f"renews:{day(c.period_end)}",
            last_payment="none",
        ),
    )


def _unapplied(c: _Customer) -> Scenario:
    """A renewal failed in Stripe; its events reached us and wait for the worker."""
    renewal = c.renewal("open")
    held = [
        events.event("invoice.payment_failed", renewal, created=c.t),
        events.event(
            "customer.subscription.updated",
            c.sub("past_due", latest_invoice=renewal["id"]),
            created=c.t + 1,
        ),
    ]
    return c.scenario(
        "change not applied yet",
        dict(ALL_ESCALATE),
        held=held,
        truth_if_applied=_truth(
            paying="grace", plan=c.plan, renewal="unpaid", last_payment="failed"
        ),
    )


def _matched_by_email(c: _Customer) -> Scenario:
    return c.scenario("matched by email only", dict(ALL_ESCALATE), records_before=1)


def _conflict(c: _Customer) -> Scenario:
    return c.scenario("two records, one email", dict(ALL_ESCALATE), records_before=2)


# name -> (plan, trial?, the fresh change)
SCENARIOS: tuple[tuple[str, bool, Callable[[_Customer], Scenario]], ...] = (
    ("Pro", False, _renewal_moved),
    ("Basic", False, _plan_change),
    ("Pro", False, _failed),
    ("Basic", False, _recovered),
    ("Pro", False, _refunded),
    ("Basic", False, _dispute_opened),
    ("Pro", False, _dispute_won),
    ("Basic", False, _cancel_at_period_end),
    ("Pro", False, _canceled),
    ("Basic", True, _trialing),
    ("Pro", False, _unapplied),
    ("Basic", False, _matched_by_email),
    ("Pro", False, _conflict),
)
# The demo's people (demo_stripe_seed), so eval customers read like the demo's.
NAMES = DEMO_NAMES


def build(run: str, *, start: int | None = None) -> list[Scenario]:
    """One customer per scenario, with fresh ids and emails unique to ``run``. The events
    start a day ago, ten seconds apart per customer."""
    start = start if start is not None else int(time.time()) - DAY
    out = []
    for n, (plan, trial, change) in enumerate(SCENARIOS):
        name = NAMES[n % len(NAMES)]
        email = f"{name.lower().replace(' ', '.')}+eval-{run}@eval.switchboard.test"
        out.append(change(_Customer(email, f"{name} (eval)", plan, start + n * 1000, trial=trial)))
    return out


# --- asking and scoring ------------------------------------------------------------------


@dataclass
class Asked:
    scenario: str
    customer_id: str
    kind: str
    question: str
    expected: str
    answer: Answer
    verdict: str


def verdict(expected: str, kind: str, answer: Answer) -> str:
    if answer.handoff:
        return CORRECT if expected == ESCALATE else ESCALATED
    if expected == ESCALATE:
        return WRONG  # a confident answer on an uncertain state
    return CORRECT if (answer.kind, answer.value) == (kind, expected) else WRONG


def ask_all(
    scenarios: Iterable[Scenario],
    state_of: Callable[[str], dict[str, Any] | None],
    answer_fn: Callable[[dict[str, Any] | None, str], Answer],
    truth_of: Callable[[Scenario], dict[str, str]],
    progress: Callable[[Scenario, list[Asked]], None] | None = None,
) -> list[Asked]:
    """Ask every question of every scenario's customer: the state is read once per
    customer (as a bot does per conversation), then each question is answered from it."""
    asked: list[Asked] = []
    for n, scenario in enumerate(scenarios):
        state = state_of(scenario.customer_id)
        truth = truth_of(scenario)
        mine = []
        for kind in KINDS:
            phrasings = QUESTIONS[kind]
            question = phrasings[n % len(phrasings)]
            result = answer_fn(state, question)
            mine.append(
                Asked(
                    scenario.name,
                    scenario.customer_id,
                    kind,
                    question,
                    truth[kind],
                    result,
                    verdict(truth[kind], kind, result),
                )
            )
        asked.extend(mine)
        if progress:
            progress(scenario, mine)
    return asked


@dataclass
class Score:
    total: int
    correct: int
    wrong: int
    escalated: int
    handoffs: int
    by_kind: dict[str, Counter[str]]

    @property
    def ratio(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def passed(self) -> bool:
        return self.total > 0 and self.ratio >= TARGET and self.wrong == 0


def score(asked: list[Asked]) -> Score:
    by_kind: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
    for a in asked:
        row = by_kind.setdefault(a.kind, Counter())
        row["questions"] += 1
        row[a.verdict] += 1
        if a.answer.handoff:
            row["handoffs"] += 1
    total = Counter(a.verdict for a in asked)
    return Score(
        total=len(asked),
        correct=total[CORRECT],
        wrong=total[WRONG],
        escalated=total[ESCALATED],
        handoffs=sum(1 for a in asked if a.answer.handoff),
        by_kind=by_kind,
    )


def table(result: Score) -> list[str]:
    """The score table: one row per kind of question, and the total."""
    head = (
        f"{'question':<14}{'asked':>7}{'correct':>9}{'wrong':>7}{'escalated':>11}{'handoffs':>10}"
    )
    lines = [head, "-" * len(head)]
    for kind, row in result.by_kind.items():
        lines.append(
            f"{kind:<14}{row['questions']:>7}{row[CORRECT]:>9}{row[WRONG]:>7}"
            f"{row[ESCALATED]:>11}{row['handoffs']:>10}"
        )
    lines.append("-" * len(head))
    lines.append(
        f"{'all':<14}{result.total:>7}{result.correct:>9}{result.wrong:>7}"
        f"{result.escalated:>11}{result.handoffs:>10}"
    )
    return lines
