"""The canonical customer: one row per real customer, linked to every other system.

Email is *not* the join key: people change addresses and share them. The links are the
Stripe customer id, CRM contact id, helpdesk user id and the product's own user id,
each unique when present. Billing fields are written by the Stripe pipeline only, so
the admin shows them read-only.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django_otp.models import Device, ThrottlingMixin, TimestampMixin


class BillingStatus(models.TextChoices):
    NONE = "none", "No subscription"
    TRIALING = "trialing", "Trialing"
    ACTIVE = "active", "Active"
    PAST_DUE = "past_due", "Past due"
    UNPAID = "unpaid", "Unpaid"
    CANCELED = "canceled", "Canceled"
    INCOMPLETE = "incomplete", "Incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired", "Incomplete, expired"
    PAUSED = "paused", "Paused"
    REFUNDED = "refunded", "Refunded"
    DISPUTED = "disputed", "Disputed"
    NEEDS_REVIEW = "needs_review", "Needs review"


class PaymentStatus(models.TextChoices):
    NONE = "none", "No payment yet"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    ACTION_REQUIRED = "action_required", "Action required"
    REFUNDED = "refunded", "Refunded"
    PARTIALLY_REFUNDED = "partially_refunded", "Partially refunded"
    DISPUTED = "disputed", "Disputed"


class OnboardingState(models.TextChoices):
    """Provisioning in the product (provisioning/): written by provisioning only, never
    by billing. Paid -> pending provisioning -> (retrying ->) active, or failed; revoked
    when the dunning policy or the end of the subscription takes access away."""

    PENDING_PROVISIONING = "pending_provisioning", "Pending provisioning"
    ACTIVE = "active", "Active"
    FAILED = "failed", "Failed"
    RETRYING = "retrying", "Retrying"
    REVOKED = "revoked", "Revoked"


class MarketplaceRole(models.TextChoices):
    NONE = "none", "None"
    BUYER = "buyer", "Buyer"
    SELLER = "seller", "Seller"


class MatchState(models.TextChoices):
    UNLINKED = "unlinked", "Not linked to Stripe yet"
    LINKED_BY_STRIPE_ID = "linked_by_stripe_id", "Linked by Stripe id"
    MATCHED_BY_EMAIL = "matched_by_email", "Matched by email only (review)"
    CONFLICT = "conflict", "Conflict (review)"


# Linked-id fields and the sentence shown when a second customer claims the same id.
LINKED_ID_FIELDS = {
    "stripe_customer_id": "Stripe customer id",
    "crm_contact_id": "CRM contact id",
    "helpdesk_user_id": "helpdesk user id",
    "product_user_id": "product user id",
    "stripe_account_id": "Stripe connected account id",
}


def _linked_id(label: str) -> models.CharField:
    return models.CharField(
        max_length=255,
        null=True,
        blank=True,
        unique=True,
        error_messages={
            "unique": f"Another customer is already linked to this {label}. "
            "Each external id belongs to exactly one customer."
        },
    )


class Customer(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Blank until Stripe tells us: events arrive unordered, and a subscription event can
    # introduce a customer before its customer.created event does.
    email = models.EmailField(max_length=254, db_index=True, blank=True)
    name = models.CharField(max_length=200, blank=True)

    # Links to the other systems (unique when present; NULL when absent).
    stripe_customer_id = _linked_id(LINKED_ID_FIELDS["stripe_customer_id"])
    crm_contact_id = _linked_id(LINKED_ID_FIELDS["crm_contact_id"])
    helpdesk_user_id = _linked_id(LINKED_ID_FIELDS["helpdesk_user_id"])
    product_user_id = _linked_id(LINKED_ID_FIELDS["product_user_id"])
    # A marketplace seller's Stripe connected account (``acct_…``): destination charges
    # name it (``transfer_data.destination``), and so do its payouts' events (``account``).
    stripe_account_id = _linked_id(LINKED_ID_FIELDS["stripe_account_id"])

    # Billing state, written by the Stripe pipeline.
    status = models.CharField(
        max_length=24, choices=BillingStatus.choices, default=BillingStatus.NONE, db_index=True
    )
    plan_id = models.CharField("plan (Stripe price/plan id)", max_length=255, blank=True)
    plan_name = models.CharField(max_length=200, blank=True)
    subscription_id = models.CharField(max_length=255, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    latest_invoice_id = models.CharField(max_length=255, blank=True)
    last_payment_status = models.CharField(
        max_length=24, choices=PaymentStatus.choices, default=PaymentStatus.NONE
    )
    last_payment_at = models.DateTimeField(null=True, blank=True)
    last_event_id = models.CharField(
        max_length=255, blank=True, help_text="Last Stripe event applied to this record."
    )
    last_event_created = models.DateTimeField(
        null=True,
        blank=True,
        help_text="`created` time of that event: older events never overwrite.",
    )
    # Never-regress guards for the other field groups (see billing/projection.py).
    payment_event_created = models.DateTimeField(null=True, blank=True, editable=False)
    profile_event_created = models.DateTimeField(null=True, blank=True, editable=False)
    subscription_event_created = models.DateTimeField(null=True, blank=True, editable=False)
    billing_confirmed_at = models.DateTimeField(
        null=True, blank=True, help_text="When Stripe last confirmed this state."
    )

    onboarding_state = models.CharField(
        max_length=24, choices=OnboardingState.choices, default=OnboardingState.PENDING_PROVISIONING
    )
    marketplace_role = models.CharField(
        max_length=8, choices=MarketplaceRole.choices, default=MarketplaceRole.NONE
    )
    match_state = models.CharField(
        max_length=24, choices=MatchState.choices, default=MatchState.UNLINKED, db_index=True
    )
    review_reason = models.CharField(max_length=300, blank=True)
    erased_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="Personal data erased on request (customers.services.customer_erase): "
        "Stripe events never write it back.",
    )

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        # Console permissions beyond add/change/view. Roles (customers/roles.py) grant them.
        permissions = [
            ("view_billing", "Can see billing state, charges and subscriptions"),
            ("request_refund", "Can request a refund for approval"),
            ("issue_refund", "Can issue a refund"),
            ("approve_refund", "Can approve or reject another person's refund request"),
            ("change_plan", "Can change a customer's plan"),
            ("cancel_subscription", "Can cancel or resume a subscription"),
            ("replay_events", "Can replay Stripe events and dead handler runs"),
            ("erase_customer", "Can erase a customer's personal data everywhere (GDPR Art. 17)"),
        ]
        indexes = [models.Index(fields=["status", "-created_at"])]

    def __str__(self) -> str:
        if self.name and self.email:
            return f"{self.name} <{self.email}>"
        return self.name or self.email or self.stripe_customer_id or str(self.pk)

    BILLING_FIELDS = (
        "status",
        "plan_id",
        "plan_name",
        "subscription_id",
        "current_period_end",
        "cancel_at_period_end",
        "latest_invoice_id",
        "last_payment_status",
        "last_payment_at",
        "last_event_id",
        "last_event_created",
        "billing_confirmed_at",
    )

    @property
    def display_name(self) -> str:
        return self.name or self.email or self.stripe_customer_id or str(self.pk)

    def clean(self) -> None:
        # Blank linked ids are stored as NULL: several customers may lack a CRM contact,
        # but no two may share one.
        for field in LINKED_ID_FIELDS:
            value = getattr(self, field)
            if value is not None:
                value = value.strip() or None
                setattr(self, field, value)
        if self.email:
            self.email = self.email.strip()
        if self.stripe_customer_id and not self.stripe_customer_id.startswith("cus_"):
            raise ValidationError(
                {"stripe_customer_id": "A Stripe customer id starts with 'cus_'."}
            )
        if self.stripe_account_id:
            if not self.stripe_account_id.startswith("acct_"):
                raise ValidationError(
                    {"stripe_account_id": "A Stripe connected account id starts with 'acct_'."}
                )
            # The connected account makes the customer a seller: one linked to an account
            # cannot be a buyer only.
            if self.marketplace_role == MarketplaceRole.BUYER:
                raise ValidationError(
                    {
                        "marketplace_role": "A customer linked to a connected account is a "
                        "seller: choose Seller or clear the account id."
                    }
                )
            self.marketplace_role = MarketplaceRole.SELLER


# --- staff second factor: recovery codes ---------------------------------------------------
# The authenticator app is django-otp's TOTPDevice. Recovery codes are ours rather than
# django-otp's StaticToken, which keeps each code in plain text: here only a SHA-256 of each
# code is stored (codes carry 80 random bits, so a plain hash cannot be searched back), and a
# code is deleted when used. The device takes part in django-otp's verification and
# throttling like any other.


class RecoveryCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """A staff user's set of one-time recovery codes (at most one per user)."""

    class Meta(Device.Meta):
        verbose_name = "recovery codes"
        verbose_name_plural = "recovery codes"

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)

    def verify_token(self, token: object) -> bool:
        """Consume ``token`` if it is one of this user's unused codes (once only)."""
        from customers.two_factor import recovery_code_hash

        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        digest = recovery_code_hash(str(token))
        deleted, _ = self.codes.filter(code_hash=digest).delete() if digest else (0, None)
        if deleted:
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
            return True
        self.throttle_increment(commit=True)
        return False


class RecoveryCode(models.Model):
    """One unused recovery code, as the SHA-256 of its normalised text."""

    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64, db_index=True)

    def __str__(self) -> str:
        return f"recovery code {self.pk}"
