"""The console's own records: alerts, account-state API tokens and the dashboard's hourly
rollups. Everything else the console shows it reads from the apps below it."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AlertState(models.TextChoices):
    OPEN = "open", "Open"
    ACKNOWLEDGED = "acknowledged", "Acknowledged"
    RECOVERED = "recovered", "Recovered"


class Alert(models.Model):
    """A condition staff must know about. One open alert per ``key`` at a time, so a
    condition that persists alerts once, not once per occurrence."""

    key = models.CharField(max_length=200)
    title = models.CharField(max_length=300)
    detail = models.TextField(blank=True)
    state = models.CharField(max_length=12, choices=AlertState.choices, default=AlertState.OPEN)
    raised_at = models.DateTimeField(auto_now_add=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivery_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-raised_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["key"],
                condition=~models.Q(state="recovered"),
                name="one_unrecovered_alert_per_key",
            ),
        ]

    def __str__(self) -> str:
        return self.title


API_SCOPE_STATE_READ = "state:read"
API_SCOPE_PROVISIONING_WRITE = "provisioning:write"
API_SCOPES = {
    API_SCOPE_STATE_READ: "Read a customer's account state",
    API_SCOPE_PROVISIONING_WRITE: "Confirm a customer was provisioned (the product)",
}


class ApiToken(models.Model):
    """A per-client credential for the account-state API (chatbots, help widgets, the product).

    Only a SHA-256 of the token is stored: the token is 32 random bytes, so a fast hash is
    enough (nothing to brute-force) and a lookup is one indexed equality. The clear token
    is shown once, when an owner creates it. Tokens are never deleted, only revoked, so
    the audit trail and the use count stay.
    """

    name = models.CharField(max_length=200, help_text="Who uses it, e.g. 'support chatbot'")
    prefix = models.CharField(
        max_length=16,
        unique=True,
        editable=False,
        help_text="The token's first characters, to recognise it",
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = models.CharField(
        max_length=200,
        default=API_SCOPE_STATE_READ,
        help_text="Space-separated: state:read, provisioning:write",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        editable=False,
    )
    use_count = models.PositiveBigIntegerField(default=0, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes.split()


class EventHourlyStats(models.Model):
    """Pre-aggregated counters of one hour of Stripe events, for the operations dashboard.

    Written only by :func:`console.stats.stats_rollup` (the scheduler refreshes the last
    few hours; older hours no longer change). The dashboard reads whole hours from here
    and the hours not rolled up yet from the raw tables, so a 7-day window costs ~170
    rows instead of a scan of every event. ``lag_histogram[i]`` counts events whose
    projection finished within ``console.stats.LAG_BOUNDS[i]`` seconds of receipt.
    """

    hour = models.DateTimeField(unique=True)
    events = models.PositiveIntegerField(default=0)
    deliveries = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    unusable = models.PositiveIntegerField(default=0)
    payments = models.PositiveIntegerField(default=0)
    payments_failed = models.PositiveIntegerField(default=0)
    recoveries = models.PositiveIntegerField(default=0)
    handler_runs = models.PositiveIntegerField(default=0, help_text="runs created this hour")
    lag_histogram = models.JSONField(default=list)
    sync_counts = models.JSONField(
        default=dict,
        help_text="outbox rows created this hour: channel -> state -> count (CRM and helpdesk)",
    )
    refreshed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-hour"]
        verbose_name = "hourly event statistics"
        verbose_name_plural = "hourly event statistics"

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} {self.events} events"
