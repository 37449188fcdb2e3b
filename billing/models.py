"""The Stripe event inbox, the handler runs each event fans out into, and reconcile runs.

Flow: the webhook view verifies a delivery and inserts a ``StripeEvent`` (the unique
``stripe_id`` makes a second delivery of the same event a counter bump, never a second
row), then signals that work exists (one drain job at a time). Drain jobs claim the
received rows in batches (the table is the queue). Processing creates one ``HandlerRun`` per
follow-up action named by the status map; each run is retried alone until it succeeds
or is dead. Sweepers (billing/sweeper.py) re-enqueue anything left behind.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class EventStatus(models.TextChoices):
    RECEIVED = "received", "Received, not processed yet"
    PROCESSED = "processed", "Processed"
    FAILED = "failed", "Failed (will be retried)"
    UNUSABLE = "unusable", "Unusable envelope"


class StripeEvent(models.Model):
    # Indexes are declared in Meta, not with unique=/db_index=: on PostgreSQL those also
    # build a varchar_pattern_ops copy of each index (for LIKE), which nothing here uses
    # and every webhook insert would pay for.
    # NULL for a signed but unusable envelope: many may be kept, each without an id.
    stripe_id = models.CharField(max_length=255, null=True, blank=True)  # noqa: DJ001
    type = models.CharField(max_length=100)
    created = models.DateTimeField(null=True, blank=True, help_text="Stripe's event.created")
    livemode = models.BooleanField(default=False)
    api_version = models.CharField(max_length=64, blank=True)
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=255, blank=True)
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    payload = models.JSONField(default=dict)
    # What billing learnt beyond the payload, kept so it is fetched once: ``object`` is
    # the object a thin event refers to (fetched in the job), ``refs`` the ids the
    # object no longer carries in newer API versions (billing/shapes.py). NULL: nothing.
    resolved = models.JSONField(null=True, blank=True, editable=False)

    status = models.CharField(
        max_length=12, choices=EventStatus.choices, default=EventStatus.RECEIVED
    )
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    delivery_count = models.PositiveIntegerField(default=1)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    # Set when a drain job claims the event (billing/services.py): until then no other
    # drain takes it; a claim past this time belongs to a worker that died and is taken
    # again. NULL: not claimed.
    claimed_until = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            # One row per Stripe event: a second delivery is ON CONFLICT (stripe_id).
            models.UniqueConstraint(fields=["stripe_id"], name="one_row_per_stripe_event"),
        ]
        indexes = [
            models.Index(fields=["status", "received_at"]),
            # Also serves lookups by stripe_customer_id alone.
            models.Index(fields=["stripe_customer_id", "-created"]),
            models.Index(fields=["type"], name="stripeevent_type_idx"),
            models.Index(fields=["object_id"], name="stripeevent_object_idx"),
        ]
        verbose_name = "Stripe event"

    def __str__(self) -> str:
        return f"{self.stripe_id or 'unusable'} {self.type}"

    @property
    def is_thin(self) -> bool:
        """A thin event (``v1.*`` from an event destination): it carries a reference,
        and its object is fetched in the job (``resolved["object"]``)."""
        return self.payload.get("object") == "v2.core.event"

    @property
    def snapshot_type(self) -> str:
        """The type the pipeline processes it as (a thin ``v1.customer.updated`` is a
        ``customer.updated``)."""
        return self.type.removeprefix("v1.") if self.is_thin else self.type

    @property
    def data_object(self) -> dict:
        if self.is_thin:
            return (self.resolved or {}).get("object") or {}
        return (self.payload.get("data") or {}).get("object") or {}


class RunStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    STARTED = "started", "Started"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed (retry scheduled)"
    DEAD = "dead", "Dead (needs a person)"


class HandlerRun(models.Model):
    event = models.ForeignKey(StripeEvent, on_delete=models.CASCADE, related_name="handler_runs")
    handler = models.CharField(max_length=40)
    status = models.CharField(max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    note = models.CharField(max_length=300, blank=True, help_text="What the handler did.")
    changes = models.JSONField(
        default=list,
        blank=True,
        help_text="Customer fields the projection changed (published to subscribers).",
    )
    next_attempt_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["event_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "handler"], name="one_run_per_handler"),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            # the dashboard's hourly rollup and its "runs created in the window" links
            models.Index(fields=["created_at"], name="handlerrun_created_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.handler} for {self.event_id}: {self.status}"


class ReconcileRun(models.Model):
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    repair = models.BooleanField(default=False)
    drift_counts = models.JSONField(default=dict, help_text="category -> count")
    drift_total = models.PositiveIntegerField(default=0)
    details = models.JSONField(default=list, help_text="First drift items, for the console")
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"reconcile {self.started_at:%Y-%m-%d %H:%M} drift={self.drift_total}"


class CustomerFacts(models.Model):
    """What Stripe's events established about one customer, each fact newest-wins by
    the event's place in Stripe's order (billing/status_map.py ``event_key``).

    The customer's billing fields are derived from these facts on every event
    (``status_map.derive``), never from the order events were processed in, so the same
    events give the same customer whatever order they arrive in. ``facts`` is plain JSON
    (``status_map.Facts`` documents its keys).
    """

    customer = models.OneToOneField(
        "customers.Customer", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    facts = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "customer facts"

    def __str__(self) -> str:
        return f"facts of {self.customer_id}"


class MirrorCursor(models.Model):
    """The newest event snapshot written to dj-stripe's copy of one Stripe object.

    Events arrive unordered; the mirror writes a snapshot only when it is newer than the
    one already written, so an old event processed last never regresses dj-stripe's copy.
    """

    object_id = models.CharField(max_length=255, unique=True)
    event_created = models.DateTimeField()
    event_id = models.CharField(max_length=255)

    def __str__(self) -> str:
        return f"{self.object_id} @ {self.event_created:%Y-%m-%d %H:%M:%S}"


# --- finance actions (billing/refunds.py, billing/subscriptions.py) -------------------------


class ActionKind(models.TextChoices):
    REFUND = "refund", "Refund"
    CHANGE_PLAN = "change_plan", "Plan change"
    CANCEL_NOW = "cancel_now", "Cancel now"
    CANCEL_AT_PERIOD_END = "cancel_at_period_end", "Cancel at period end"
    RESUME = "resume", "Resume (undo pending cancellation)"


class ActionState(models.TextChoices):
    REQUESTED = "requested", "Requested (not sent to Stripe yet)"
    SUBMITTED = "submitted", "Submitted to Stripe, waiting for confirmation"
    CONFIRMED = "confirmed", "Confirmed by Stripe's webhook"
    FAILED = "failed", "Failed (Stripe refused; nothing changed)"


class FinanceAction(models.Model):
    """One staff action on money or a subscription, from the click to Stripe's webhook.

    ``requested`` (row written, Stripe not called yet) -> ``submitted`` (Stripe accepted;
    ``stripe_object_id`` is the refund or subscription) -> ``confirmed`` (the webhook that
    proves it arrived: ``confirmed_event_id``/``confirmed_at``) or ``failed`` (Stripe
    refused: ``error_message`` says why in plain words). The row is written *before*
    Stripe is called and ``idempotency_key`` is derived from it, so a retry of the same row
    can never make Stripe act twice; ``key`` is the form's one-time submission id, so a
    double submit finds this row instead of creating a second one. Local billing state is
    never edited here: the pipeline's projection does that when the webhook arrives.
    """

    key = models.UUIDField(
        unique=True,
        editable=False,
        help_text="The form's submission id: one action per submission.",
    )
    kind = models.CharField(max_length=24, choices=ActionKind.choices)
    state = models.CharField(
        max_length=12, choices=ActionState.choices, default=ActionState.REQUESTED, db_index=True
    )
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="finance_actions"
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    refund_request = models.OneToOneField(
        "billing.RefundRequest",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="action",
    )
    stripe_customer_id = models.CharField(max_length=255, blank=True)
    stripe_subscription_id = models.CharField(max_length=255, blank=True, db_index=True)
    charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    amount = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Smallest currency unit (refunds)."
    )
    currency = models.CharField(max_length=3, blank=True)
    reason_code = models.CharField(max_length=32, blank=True)
    note = models.TextField(blank=True, help_text="The staff member's reason, in words.")
    params = models.JSONField(
        default=dict, blank=True, help_text="What was asked (plan, proration, before values)."
    )
    idempotency_key = models.CharField(max_length=255, unique=True)
    stripe_object_id = models.CharField(max_length=255, blank=True, db_index=True)
    error_message = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    submitted_at = models.DateTimeField(null=True, blank=True)
    confirmed_at = models.DateTimeField(null=True, blank=True)
    confirmed_event_id = models.CharField(max_length=255, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["kind", "state"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} ({self.state})"

    @property
    def is_open(self) -> bool:
        return self.state in (ActionState.REQUESTED, ActionState.SUBMITTED)


class RefundRequestStatus(models.TextChoices):
    PENDING = "pending", "Waiting for approval"
    APPROVED = "approved", "Approved (refund issued)"
    REJECTED = "rejected", "Rejected"


class RefundRequest(models.Model):
    """A refund that needs a second person: above ``REFUND_APPROVAL_THRESHOLD`` or asked
    for by a support agent. The requester sees it through a django-guardian object
    permission (``billing.view_refundrequest`` on this row) and can never approve it."""

    key = models.UUIDField(
        unique=True,
        editable=False,
        help_text="The form's submission id: one request per submission.",
    )
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="refund_requests"
    )
    charge_id = models.CharField(max_length=255)
    amount = models.PositiveBigIntegerField(help_text="Smallest currency unit.")
    currency = models.CharField(max_length=3)
    charge_amount = models.PositiveBigIntegerField()
    reason_code = models.CharField(max_length=32)
    note = models.TextField()
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=10,
        choices=RefundRequestStatus.choices,
        default=RefundRequestStatus.PENDING,
        db_index=True,
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Refund request #{self.pk} ({self.status})"


class OrderState(models.TextChoices):
    """An order's state, derived from every event about its payment (billing/orders.py)."""

    PENDING = "pending", "Awaiting payment"
    FAILED = "failed", "Payment failed"
    PAID = "paid", "Paid"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    REFUNDED = "refunded", "Refunded"
    DISPUTED = "disputed", "Disputed"
    WON = "won", "Dispute won"
    LOST = "lost", "Dispute lost"


class Order(models.Model):
    """One one-time payment (a Checkout session in ``payment`` mode, or a payment intent
    that pays no invoice), with its buyer and, for a marketplace, its seller.

    Written only by the order projection (billing/orders.py): ``facts`` holds what every
    event said, newest-wins per fact, and the other fields are derived from it, so the
    same events give the same order in any order. The Stripe ids are unique when set:
    each event finds its order by any id it names.
    """

    payment_intent_id = models.CharField(max_length=255, null=True, blank=True, unique=True)  # noqa: DJ001
    charge_id = models.CharField(max_length=255, null=True, blank=True, unique=True)  # noqa: DJ001
    checkout_session_id = models.CharField(  # noqa: DJ001
        max_length=255, null=True, blank=True, unique=True
    )
    state = models.CharField(
        max_length=20, choices=OrderState.choices, default=OrderState.PENDING, db_index=True
    )
    buyer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders_bought",
    )
    buyer_stripe_customer_id = models.CharField(max_length=255, blank=True)
    buyer_email = models.EmailField(max_length=254, blank=True)
    seller = models.ForeignKey(
        "customers.Customer",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="orders_sold",
    )
    seller_account_id = models.CharField(
        max_length=255,
        blank=True,
        db_index=True,
        help_text="The connected account the payment goes to (transfer_data.destination).",
    )
    on_behalf_of = models.CharField(max_length=255, blank=True)
    transfer_id = models.CharField(max_length=255, blank=True)
    amount = models.BigIntegerField(default=0, help_text="Smallest currency unit.")
    currency = models.CharField(max_length=3, blank=True)
    application_fee_amount = models.BigIntegerField(default=0)
    amount_refunded = models.BigIntegerField(default=0)
    livemode = models.BooleanField(default=False)
    paid_at = models.DateTimeField(null=True, blank=True)
    last_event_created = models.DateTimeField(null=True, blank=True)
    facts = models.JSONField(default=dict, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "-created_at"], name="order_state_idx"),
            models.Index(fields=["seller", "-created_at"], name="order_seller_idx"),
        ]

    def __str__(self) -> str:
        return f"Order #{self.pk}"

    @property
    def is_destination_charge(self) -> bool:
        """Paid to a connected account (Connect destination charge): a refund reverses
        the transfer and the platform's application fee too."""
        return bool(self.seller_account_id)

    @property
    def refundable(self) -> int:
        return max(self.amount - self.amount_refunded, 0)
