"""The outbox: every outbound change to a downstream system is a row before it is a call.

A row is written in the same transaction as the state change that causes it (a handler
run of the Stripe pipeline, a staff action, an alert), with a ``dedupe_key`` that makes
a retry or a replay of the cause a no-op (``ticket:payment_failed:<invoice id>``). RQ jobs
on queue ``sync`` deliver rows; each delivery attempt is recorded on the row. Rows for
the same ``coalesce_key`` (one CRM contact, say) that are still waiting are superseded
by a newer one, so only the newest state is sent.

This app (``crm_sync``) holds the outbox for every channel, not only the CRM: it is the
"downstream sync" part of Switchboard (CRM, helpdesk, customer email, Slack alerts).
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class Channel(models.TextChoices):
    CRM = "crm", "CRM"
    HELPDESK = "helpdesk", "Helpdesk"
    EMAIL = "email", "Customer email"
    SLACK = "slack", "Slack"


class OutboxState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERING = "delivering", "Delivering"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (retry scheduled)"
    PAUSED = "paused", "Paused (configuration problem)"
    DEAD = "dead", "Dead (needs a person)"
    SUPERSEDED = "superseded", "Superseded by a newer update"


class OutboxMessage(models.Model):
    channel = models.CharField(max_length=10, choices=Channel.choices)
    kind = models.CharField(max_length=60, help_text="e.g. contact_upsert, ticket_open, email_payment_failed")
    dedupe_key = models.CharField(max_length=255, unique=True)
    coalesce_key = models.CharField(max_length=255, blank=True, db_index=True,
                                    help_text="Waiting rows with the same key are superseded by the newest")
    customer = models.ForeignKey("customers.Customer", null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="outbox_messages")
    source_event = models.ForeignKey("billing.StripeEvent", null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="outbox_messages")
    payload = models.JSONField(default=dict)

    state = models.CharField(max_length=12, choices=OutboxState.choices, default=OutboxState.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=300, blank=True, help_text="What the delivery did")
    external_id = models.CharField(max_length=255, blank=True,
                                   help_text="The vendor's id of what was created or updated")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"]),
            models.Index(fields=["customer", "-created_at"]),
            models.Index(fields=["channel", "state"]),
        ]
        verbose_name = "outbox message"

    def __str__(self) -> str:
        return f"{self.channel}:{self.kind} {self.dedupe_key} ({self.state})"
