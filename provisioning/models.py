"""Provisioning in the product: its webhook endpoints, each customer's entitlement and the
history of every onboarding transition.

``ProductEndpoint`` is where the product receives Switchboard's signed webhooks
(Standard Webhooks). Its secrets (``whsec_…``) sign; they are shown once when created or
rotated and never again (pages, logs and audit entries show only :attr:`secret_hint`).

``Entitlement`` is one customer's access as Switchboard granted it to the product: the
generation of the current grant (every ``customer.entitled`` after a revocation is a new
generation), the plan the product was told, and the dunning facts (failed invoice
payments since the last successful one). ``customers.Customer.onboarding_state`` is its
visible state, written only by provisioning/states.py.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from customers.models import OnboardingState


class ProductEndpoint(models.Model):
    url = models.URLField("URL", max_length=500)
    description = models.CharField(max_length=200, blank=True)
    enabled = models.BooleanField(default=True)
    secret = models.CharField(max_length=100, editable=False)
    previous_secret = models.CharField(max_length=100, blank=True, editable=False)
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]
        verbose_name = "product webhook endpoint"
        permissions = [("rotate_secret", "Can rotate a product endpoint's signing secret")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.description or self.url}"

    @property
    def secret_hint(self) -> str:
        """Enough to tell two secrets apart, never enough to sign: ``whsec_Ab3d…``."""
        return f"{self.secret[:10]}…" if self.secret else "(none)"

    def signing_secrets(self, now=None) -> list[str]:
        """The secrets that sign now: the current one, and the previous one until it expires."""
        now = now or timezone.now()
        secrets = [self.secret]
        if (
            self.previous_secret
            and self.previous_secret_expires_at
            and self.previous_secret_expires_at > now
        ):
            secrets.append(self.previous_secret)
        return secrets


class Entitlement(models.Model):
    customer = models.OneToOneField(
        "customers.Customer", on_delete=models.CASCADE, related_name="entitlement"
    )
    entitled = models.BooleanField(default=False)
    generation = models.PositiveIntegerField(default=0)
    plan_id = models.CharField(max_length=255, blank=True)
    plan_changes = models.PositiveIntegerField(default=0)
    state = models.CharField(
        max_length=24,
        choices=OnboardingState.choices,
        default=OnboardingState.PENDING_PROVISIONING,
        db_index=True,
    )
    reason = models.CharField(max_length=300, blank=True)
    entitled_at = models.DateTimeField(null=True, blank=True)
    state_since = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # Dunning facts (provisioning/dunning.py): failed invoice payments by Stripe event id
    # {evt: {"at": unix, "attempt": n, "invoice": id}}, the newest successful payment's
    # time and the invoices known paid. Kept per event, so duplicates count once and
    # the order of arrival does not matter.
    failures = models.JSONField(default=dict, blank=True)
    last_paid_at = models.IntegerField(default=0)
    paid_invoices = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["entitled", "state"])]

    def __str__(self) -> str:
        return f"entitlement of {self.customer_id}: {self.state} (gen {self.generation})"


class Transition(models.Model):
    """Every onboarding transition, with why and what caused it."""

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="provisioning_transitions"
    )
    generation = models.PositiveIntegerField(default=0)
    from_state = models.CharField(max_length=24, blank=True)
    to_state = models.CharField(max_length=24)
    reason = models.CharField(max_length=300, blank=True)
    cause = models.CharField(max_length=255, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-at", "-pk"]
        indexes = [models.Index(fields=["customer", "-at"])]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.from_state} -> {self.to_state}"
