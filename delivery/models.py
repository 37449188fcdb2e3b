"""The outbox: every outbound call to a vendor is a row before it is a call.

A row is written in the same transaction as the state change that causes it (a billing
subscriber's run, a staff action, an alert), with a ``dedupe_key`` that makes a retry or
a replay of the cause a no-op (``ticket:payment_failed:<invoice id>``). RQ jobs on queue
``sync`` deliver rows; each delivery attempt is recorded on the row. Rows for the same
``coalesce_key`` (one CRM contact, say) that are still waiting are superseded by a newer
one, so only the newest state is sent.

``channel`` is a plain name checked against the channel registry
(``delivery.senders.register_channel``): ``email`` and ``slack`` are built in, ``crm``
and ``helpdesk`` are registered by the apps that own those vendors. ``cause`` names what
made the row (``stripe_event:evt_…``) as plain text, so this app depends on no app that
writes to it.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class OutboxState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERING = "delivering", "Delivering"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed (retry scheduled)"
    PAUSED = "paused", "Paused (configuration problem)"
    DEAD = "dead", "Dead (needs a person)"
    SUPERSEDED = "superseded", "Superseded by a newer update"


class OutboxMessage(models.Model):
    channel = models.CharField(
        max_length=20, help_text="A registered channel: crm, helpdesk, email, slack"
    )
    kind = models.CharField(
        max_length=60, help_text="e.g. contact_upsert, ticket_open, email_payment_failed"
    )
    dedupe_key = models.CharField(max_length=255, unique=True)
    coalesce_key = models.CharField(
        max_length=255,
        blank=True,
        db_index=True,
        help_text="Waiting rows with the same key are superseded by the newest",
    )
    customer = models.ForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="outbox_messages",
    )
    cause = models.CharField(
        max_length=255,
        blank=True,
        db_index=True,
        help_text="What made this row, e.g. stripe_event:evt_123",
    )
    payload = models.JSONField(default=dict)

    state = models.CharField(
        max_length=12, choices=OutboxState.choices, default=OutboxState.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    outcome = models.CharField(max_length=300, blank=True, help_text="What the delivery did")
    external_id = models.CharField(
        max_length=255, blank=True, help_text="The vendor's id of what was created or updated"
    )
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
        permissions = [("retry_outboxmessage", "Can retry dead, paused or failed outbox messages")]

    def __str__(self) -> str:
        return f"{self.channel}:{self.kind} {self.dedupe_key} ({self.state})"

    def get_channel_display(self) -> str:
        from delivery.senders import channel_label

        return channel_label(self.channel)
