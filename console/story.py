"""The customer page's timeline in a support agent's words: what happened, newest first.

One item per thing a person would name — a payment, a failed payment, a refund, a plan
change, a dispute, a ticket opened or solved, an email sent, a CRM update, a staff action
— with its amount. The pipeline's internal handler runs (and the CRM/helpdesk deliveries
an event caused) are folded into their Stripe event: the item says "CRM updated,
helpdesk: nothing to do" and the raw rows sit behind a disclosure.

Who sees what: support agents see disputes and their state (a customer asking about one
must get a straight answer) but not their amounts; refunds, reconcile repairs and staff
finance decisions stay finance-only (``console.selectors.FINANCE_ONLY_*``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit.models import AuditEntry
from billing.models import HandlerRun, StripeEvent
from config.money import format_money
from console.selectors import FINANCE_ONLY_AUDIT_PREFIXES, FINANCE_ONLY_QUEUES
from customers.models import Customer
from customers.permissions import can_view_finance_details
from delivery.models import OutboxMessage, OutboxState
from support.models import Ticket

# kind -> filter label, in the order the filter shows them.
KINDS = {
    "payments": "Payments",
    "refunds": "Refunds",
    "plan": "Plan and subscription",
    "disputes": "Disputes",
    "tickets": "Tickets",
    "emails": "Emails",
    "crm": "CRM and helpdesk",
    "staff": "Staff actions",
    "account": "Account",
}
FINANCE_ONLY_KINDS = ("refunds",)
PAGE_SIZE = 25
MAX_PAGE = 200

# What a support agent calls each follow-up of a Stripe event; internal ones (the
# projection, dj-stripe's mirror) appear only in the details.
_HANDLER_LABELS = {
    "crm_update": "CRM",
    "helpdesk_ticket": "helpdesk",
    "customer_notification": "customer email",
}
AUDIT_WORDS = {
    "customers.customer.created": "created the customer record",
    "customers.customer.updated": "edited the customer's details",
    "billing.event.replayed": "replayed a Stripe event",
    "billing.handler.replayed": "retried a failed follow-up",
    "billing.reconcile.repaired": "repaired drift found by the reconcile",
    "billing.refund.requested": "asked for a refund",
    "billing.refund.approved": "approved a refund request",
    "billing.refund.rejected": "rejected a refund request",
    "billing.refund.issued": "refunded a payment",
    "billing.refund.failed": "tried to refund; Stripe refused",
    "billing.subscription.plan_changed": "changed the plan",
    "billing.subscription.canceled": "canceled the subscription",
    "billing.subscription.resumed": "resumed the subscription",
    "billing.subscription.action_failed": "tried to change the subscription; Stripe refused",
    "billing.action.confirmed": "finance action confirmed by Stripe",
    "sync.outbox.retried": "retried a CRM/helpdesk delivery",
    "support.ticket.solved": "solved a ticket",
}
_AUDIT_KINDS = {
    "billing.refund.": "refunds",
    "billing.subscription.": "plan",
    "support.ticket.": "tickets",
    "sync.": "crm",
}


@dataclass
class Story:
    at: datetime
    kind: str
    title: str
    detail: str = ""
    problem: bool = False
    followups: str = ""  # "CRM updated, helpdesk: nothing to do"
    details: list[str] = field(default_factory=list)  # behind the disclosure

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)


@dataclass
class StoryPage:
    items: list[Story]
    page: int
    pages: int
    total: int
    kind: str
    kinds: list[tuple[str, str]]
    finance: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def event_kind(event_type: str) -> str:
    if event_type.startswith("charge.dispute."):
        return "disputes"
    if event_type.startswith(("charge.refund", "refund.")):
        return "refunds"
    if event_type.startswith("customer.subscription."):
        return "plan"
    if event_type.startswith(("invoice.", "payment_intent.", "charge.", "checkout.")):
        return "payments"
    return "account"


def money_words(amount: Any, currency: Any) -> str:
    if amount is None or amount == "":
        return ""
    try:
        return format_money(int(amount), str(currency or ""))
    except (TypeError, ValueError):
        return ""


def _date(ts: Any) -> str:
    try:
        return f"{datetime.fromtimestamp(int(ts), tz=timezone.get_current_timezone()):%d %b %Y}"
    except (TypeError, ValueError, OverflowError):
        return ""


def plan_words(plan: dict[str, Any]) -> str:
    """ "Pro — 49.00 USD/month" from a Stripe plan or price object."""
    if not plan:
        return ""
    name = plan.get("nickname") or plan.get("product_name") or plan.get("id") or "plan"
    if isinstance(plan.get("product"), dict):
        name = plan.get("nickname") or plan["product"].get("name") or name
    amount = plan.get("amount", plan.get("unit_amount"))
    interval = plan.get("interval") or (plan.get("recurring") or {}).get("interval") or ""
    price = money_words(amount, plan.get("currency"))
    return f"{name} — {price}{'/' + interval if interval else ''}" if price else str(name)


def subscription_plan(sub: dict[str, Any]) -> dict[str, Any]:
    items = (sub.get("items") or {}).get("data") or []
    if items:
        return items[0].get("price") or items[0].get("plan") or {}
    return sub.get("plan") or {}


def invoice_purpose(invoice: dict[str, Any]) -> str:
    """What an invoice paid for, in words: the line's plan and period."""
    lines = (invoice.get("lines") or {}).get("data") or []
    words = ""
    if lines:
        line = lines[0]
        plan = line.get("price") or line.get("plan") or {}
        words = plan.get("nickname") or line.get("description") or ""
        period = line.get("period") or {}
        start, end = _date(period.get("start")), _date(period.get("end"))
        if start and end:
            words = f"{words}, {start} – {end}".lstrip(", ")
    number = invoice.get("number") or invoice.get("id") or ""
    return f"{words} (invoice {number})" if words else f"invoice {number}"


def describe_event(event: StripeEvent, *, finance: bool) -> tuple[str, str, bool]:
    """(title, detail, problem) of one Stripe event in a support agent's words."""
    obj = event.data_object
    kind = event.type
    cur = obj.get("currency")
    if kind in ("invoice.paid", "invoice.payment_succeeded"):
        return f"Paid {money_words(obj.get('amount_paid'), cur)}", invoice_purpose(obj), False
    if kind == "invoice.payment_failed":
        retry = _date(obj.get("next_payment_attempt"))
        return (
            f"Payment of {money_words(obj.get('amount_due'), cur)} failed",
            invoice_purpose(obj)
            + (f"; attempt {obj['attempt_count']}" if obj.get("attempt_count") else "")
            + (f"; Stripe retries on {retry}" if retry else ""),
            True,
        )
    if kind == "invoice.payment_action_required":
        return (
            f"Payment of {money_words(obj.get('amount_due'), cur)} waits for the customer to confirm",
            invoice_purpose(obj),
            True,
        )
    if kind in ("invoice.created", "invoice.finalized", "invoice.upcoming"):
        verb = {"invoice.created": "created", "invoice.finalized": "finalized"}.get(
            kind, "coming up"
        )
        return (
            f"Invoice {verb}: {money_words(obj.get('amount_due'), cur)}",
            invoice_purpose(obj),
            False,
        )
    if kind in ("payment_intent.succeeded", "charge.succeeded"):
        return (
            f"Payment of {money_words(obj.get('amount'), cur)} succeeded",
            obj.get("id", ""),
            False,
        )
    if kind in ("payment_intent.payment_failed", "charge.failed"):
        error = (obj.get("last_payment_error") or {}).get("message") or obj.get("failure_message")
        return f"Payment of {money_words(obj.get('amount'), cur)} failed", error or "", True
    if kind == "checkout.session.completed":
        return f"Checkout completed: {money_words(obj.get('amount_total'), cur)}", "", False
    if kind == "charge.refunded":
        return (
            f"Refunded {money_words(obj.get('amount_refunded'), cur)} of "
            f"{money_words(obj.get('amount'), cur)}",
            f"payment {obj.get('id', '')}",
            False,
        )
    if kind.startswith(("refund.", "charge.refund.")):
        return (
            f"Refund of {money_words(obj.get('amount'), cur)}: {obj.get('status') or 'updated'}",
            f"payment {obj.get('charge', '')}"
            + (f"; {obj['reason']}" if obj.get("reason") else ""),
            obj.get("status") == "failed",
        )
    if kind.startswith("charge.dispute."):
        amount = f" of {money_words(obj.get('amount'), cur)}" if finance else ""
        state = (obj.get("status") or "").replace("_", " ")
        reason = (obj.get("reason") or "").replace("_", " ")
        verb = {
            "charge.dispute.created": "Dispute opened",
            "charge.dispute.closed": "Dispute closed",
            "charge.dispute.funds_withdrawn": "Dispute: funds withdrawn",
            "charge.dispute.funds_reinstated": "Dispute: funds reinstated",
        }.get(kind, "Dispute updated")
        return (
            f"{verb}{amount}" + (f": {state}" if state else ""),
            f"payment {obj.get('charge', '')}" + (f"; reason: {reason}" if reason else ""),
            kind != "charge.dispute.closed" or obj.get("status") == "lost",
        )
    if kind.startswith("customer.subscription."):
        return _describe_subscription(event, obj)
    if kind == "customer.created":
        return "Became a Stripe customer", obj.get("email") or "", False
    if kind == "customer.updated":
        return "Customer details changed in Stripe", "", False
    if kind == "customer.deleted":
        return "Customer deleted in Stripe", "", True
    return f"Stripe: {kind}", event.object_id, False


def _describe_subscription(event: StripeEvent, obj: dict[str, Any]) -> tuple[str, str, bool]:
    plan = plan_words(subscription_plan(obj))
    status = (obj.get("status") or "").replace("_", " ")
    if event.type == "customer.subscription.created":
        return f"Subscribed: {plan}" if plan else "Subscribed", f"status {status}", False
    if event.type == "customer.subscription.deleted":
        return "Subscription ended", plan, True
    if event.type == "customer.subscription.trial_will_end":
        return "Trial ends soon", f"on {_date(obj.get('trial_end'))}", False
    previous = (event.payload.get("data") or {}).get("previous_attributes") or {}
    before = (
        plan_words(subscription_plan(previous)) if "items" in previous or "plan" in previous else ""
    )
    if before and before != plan:
        return f"Plan changed from {before} to {plan}", f"status {status}", False
    if "cancel_at_period_end" in previous:
        if obj.get("cancel_at_period_end"):
            return (
                "Set to cancel at the end of the period",
                f"ends on {_date(obj.get('current_period_end'))}",
                False,
            )
        return "Cancellation withdrawn: renews again", plan, False
    if "status" in previous:
        return f"Subscription is now {status}", plan, status in ("past due", "unpaid")
    return f"Subscription updated ({status})", plan, False


def _followups(runs: list[HandlerRun], syncs: list[OutboxMessage]) -> tuple[str, list[str], bool]:
    words: list[str] = []
    details: list[str] = []
    problem = False
    for run in runs:
        note = (run.note or run.last_error or "")[:160]
        details.append(
            f"{run.handler}: {run.get_status_display().lower()}"
            + (f" — {note}" if note else "")
            + (f" ({run.attempts} attempts)" if run.attempts > 1 else "")
        )
        label = _HANDLER_LABELS.get(run.handler)
        if run.status in ("failed", "dead"):
            problem = True
            words.append(
                f"{label or run.handler}: "
                + ("failed, needs a person" if run.status == "dead" else "failing, retrying")
            )
        elif label is None:
            continue
        elif run.status in ("pending", "started"):
            words.append(f"{label}: pending")
        elif "nothing" in (run.note or "").lower():
            words.append(f"{label}: nothing to do")
        else:
            words.append(f"{label} updated")
    for row in syncs:
        details.append(
            f"{row.get_channel_display()} {row.kind.replace('_', ' ')}: "
            f"{row.get_state_display().lower()}"
            + (
                f" — {(row.outcome or row.last_error)[:160]}"
                if row.outcome or row.last_error
                else ""
            )
        )
        if row.state in (OutboxState.DEAD, OutboxState.PAUSED):
            problem = True
            words.append(f"{row.get_channel_display()} delivery {row.state}")
    return ", ".join(dict.fromkeys(words)), details, problem


_EMAIL_WORDS = {
    OutboxState.DELIVERED: "Email sent to the customer",
    OutboxState.PENDING: "Email waiting to be sent",
    OutboxState.DELIVERING: "Email being sent",
    OutboxState.FAILED: "Email not sent yet (retrying)",
    OutboxState.PAUSED: "Email on hold (email channel paused)",
    OutboxState.DEAD: "Email could not be sent",
    OutboxState.SUPERSEDED: "Email replaced by a newer one",
}


def _sync_story(row: OutboxMessage) -> Story:
    what = row.kind.replace("_", " ").removeprefix("email ")
    problem = row.state in (OutboxState.DEAD, OutboxState.PAUSED, OutboxState.FAILED)
    if row.channel == "email":
        return Story(
            row.created_at,
            "emails",
            f"{_EMAIL_WORDS.get(row.state, 'Email')}: {what}",
            row.outcome or row.last_error[:160],
            problem,
        )
    done = "updated" if row.state == OutboxState.DELIVERED else row.get_state_display().lower()
    return Story(
        row.created_at,
        "crm",
        f"{row.get_channel_display()} {what}: {done}",
        (row.outcome or row.last_error)[:160],
        problem,
    )


def _audit_story(entry: AuditEntry) -> Story:
    kind = next((k for p, k in _AUDIT_KINDS.items() if entry.action.startswith(p)), "staff")
    data = entry.data or {}
    who = entry.actor_label or "System"
    title = f"{who} {AUDIT_WORDS.get(entry.action, entry.action)}"
    amount = money_words(data.get("amount"), data.get("currency")) if data.get("currency") else ""
    if amount:
        title += f": {amount}"
    reason = str(data.get("reason") or data.get("note") or "")[:200]
    return Story(
        entry.created_at,
        kind,
        title,
        f"why: {reason}" if reason else "",
        entry.action.endswith(("failed", "rejected")),
    )


def _ticket_stories(ticket: Ticket) -> list[Story]:
    opened = Story(
        ticket.created_at,
        "tickets",
        f"Ticket opened: {ticket.subject}",
        f"#{ticket.pk} in {ticket.queue.name}, priority {ticket.get_priority_display().lower()}"
        + (f", helpdesk #{ticket.external_id}" if ticket.external_id else ""),
    )
    if ticket.solved_at:
        return [
            Story(ticket.solved_at, "tickets", f"Ticket solved: {ticket.subject}", f"#{ticket.pk}"),
            opened,
        ]
    return [opened]


def _queries(customer: Customer, finance: bool, kind: str) -> dict[str, QuerySet[Any]]:
    events = StripeEvent.objects.none()
    if customer.stripe_customer_id:
        events = StripeEvent.objects.filter(stripe_customer_id=customer.stripe_customer_id)
    syncs = (
        OutboxMessage.objects.filter(customer=customer)
        .exclude(Q(cause__startswith="stripe_event:") & ~Q(channel="email"))
        .exclude(state=OutboxState.SUPERSEDED)
    )
    tickets = Ticket.objects.filter(customer=customer).select_related("queue")
    audit = AuditEntry.objects.filter(
        target_type=ContentType.objects.get_for_model(Customer), target_id=str(customer.pk)
    )
    if not finance:
        events = events.exclude(Q(type__startswith="charge.refund") | Q(type__startswith="refund."))
        for prefix in FINANCE_ONLY_AUDIT_PREFIXES:
            audit = audit.exclude(action__startswith=prefix)
        tickets = tickets.exclude(queue__slug__in=FINANCE_ONLY_QUEUES)
    if kind:
        prefixes = {
            "disputes": ("charge.dispute.",),
            "refunds": ("charge.refund", "refund."),
            "plan": ("customer.subscription.",),
            "payments": ("invoice.", "payment_intent.", "charge.", "checkout."),
            "account": ("customer.",),
        }.get(kind)
        if prefixes:
            match = Q()
            for prefix in prefixes:
                match |= Q(type__startswith=prefix)
            events = events.filter(match)
            if kind == "payments":
                events = events.exclude(
                    Q(type__startswith="charge.dispute.") | Q(type__startswith="charge.refund")
                )
            if kind == "account":
                events = events.exclude(type__startswith="customer.subscription.")
        else:
            events = events.none()
        syncs = (
            syncs.filter(channel="email")
            if kind == "emails"
            else (syncs.exclude(channel="email") if kind == "crm" else syncs.none())
        )
        if kind != "tickets":
            tickets = tickets.none()
        audit_prefix = [p for p, k in _AUDIT_KINDS.items() if k == kind]
        if kind == "staff":
            for p in _AUDIT_KINDS:
                audit = audit.exclude(action__startswith=p)
        elif audit_prefix:
            match = Q()
            for p in audit_prefix:
                match |= Q(action__startswith=p)
            audit = audit.filter(match)
        else:
            audit = audit.none()
    return {
        "events": events.order_by("-received_at", "-id"),
        "syncs": syncs.order_by("-created_at", "-id"),
        "tickets": tickets.order_by("-created_at", "-id"),
        "audit": audit.order_by("-created_at", "-id"),
    }


def customer_story(
    customer: Customer, user: Any, *, kind: str = "", page: int = 1, page_size: int = PAGE_SIZE
) -> StoryPage:
    """Page ``page`` of what happened to the customer, newest first, optionally one kind.

    Each source is read already sorted and cut at ``page * page_size`` rows, then merged;
    handler runs and event-caused CRM/helpdesk deliveries are read only for the events
    on the page. Pages beyond ``MAX_PAGE`` are not served.
    """
    finance = can_view_finance_details(user)
    if kind not in KINDS or (kind in FINANCE_ONLY_KINDS and not finance):
        kind = ""
    sources = _queries(customer, finance, kind)
    counts = {name: qs.count() for name, qs in sources.items()}
    # A ticket that was solved is two items (opened, solved).
    solved = sources["tickets"].filter(solved_at__isnull=False).count() if counts["tickets"] else 0
    total = sum(counts.values()) + solved
    pages = max(min((total + page_size - 1) // page_size, MAX_PAGE), 1)
    page = min(max(page, 1), pages)
    depth = page * page_size
    stories: list[tuple[Story, StripeEvent | None]] = []
    if counts["events"]:
        stories += [
            (Story(e.received_at, event_kind(e.type), *describe_event(e, finance=finance)), e)
            for e in sources["events"][:depth]
        ]
    if counts["syncs"]:
        stories += [(_sync_story(r), None) for r in sources["syncs"][:depth]]
    if counts["tickets"]:
        stories += [(s, None) for t in sources["tickets"][:depth] for s in _ticket_stories(t)]
    if counts["audit"]:
        stories += [(_audit_story(a), None) for a in sources["audit"][:depth]]
    stories.sort(key=lambda pair: pair[0].at, reverse=True)
    start = (page - 1) * page_size
    shown = stories[start : start + page_size]
    _fold(shown)
    kinds = [(k, label) for k, label in KINDS.items() if finance or k not in FINANCE_ONLY_KINDS]
    return StoryPage(
        items=[s for s, _ in shown],
        page=page,
        pages=pages,
        total=total,
        kind=kind,
        kinds=kinds,
        finance=finance,
    )


def _fold(shown: list[tuple[Story, StripeEvent | None]]) -> None:
    """Attach handler runs and event-caused deliveries to the events on the page."""
    events = {e.pk: (s, e) for s, e in shown if e is not None}
    if not events:
        return
    runs: dict[int, list[HandlerRun]] = {}
    for run in HandlerRun.objects.filter(event_id__in=events).order_by("created_at", "id"):
        runs.setdefault(run.event_id, []).append(run)
    by_cause = {f"stripe_event:{e.stripe_id}": pk for pk, (_, e) in events.items() if e.stripe_id}
    syncs: dict[int, list[OutboxMessage]] = {}
    for row in (
        OutboxMessage.objects.filter(cause__in=by_cause)
        .exclude(channel="email")
        .exclude(state=OutboxState.SUPERSEDED)
        .order_by("created_at", "id")
    ):
        syncs.setdefault(by_cause[row.cause], []).append(row)
    for pk, (story, event) in events.items():
        words, details, problem = _followups(runs.get(pk, []), syncs.get(pk, []))
        story.followups = words
        story.details = [f"Stripe event {event.type} ({event.stripe_id})", *details]
        story.problem = story.problem or problem
