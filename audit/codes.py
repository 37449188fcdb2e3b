"""Every audit action code, in one place.

Codes are dotted ``<area>.<noun>.<verb>`` strings. Add a code here before using it:
``audit_record`` refuses codes that are not listed, so a typo cannot create a new,
unsearchable kind of entry.
"""

from __future__ import annotations

# Staff and access
AUTH_LOCKOUT = "auth.login.locked_out"
STAFF_USER_CREATED = "staff.user.created"
STAFF_ROLE_CHANGED = "staff.user.role_changed"
STAFF_PASSWORD_SET = "staff.user.password_set"
STAFF_USER_UPDATED = "staff.user.updated"
PERMISSION_DENIED = "staff.permission.denied"
# Second factor (customers/two_factor.py): never a secret or a code in the data
STAFF_2FA_ENROLLED = "staff.two_factor.enrolled"
STAFF_2FA_DEVICE_REMOVED = "staff.two_factor.device_removed"
STAFF_2FA_RECOVERY_CODES_GENERATED = "staff.two_factor.recovery_codes_generated"
STAFF_2FA_RECOVERY_CODE_USED = "staff.two_factor.recovery_code_used"
STAFF_2FA_RESET = "staff.two_factor.reset"
STAFF_2FA_FAILED = "staff.two_factor.failed"

# Canonical customer record
CUSTOMER_CREATED = "customers.customer.created"
CUSTOMER_UPDATED = "customers.customer.updated"
CUSTOMER_ERASED = "customers.customer.erased"
# Retention: old delivered outbox rows, succeeded handler runs and event payloads purged
RETENTION_PURGED = "system.retention.purged"

# Billing (Stripe pipeline and finance actions)
BILLING_EVENT_REPLAYED = "billing.event.replayed"
BILLING_HANDLER_REPLAYED = "billing.handler.replayed"
BILLING_RECONCILE_REPAIRED = "billing.reconcile.repaired"
BILLING_REFUND_REQUESTED = "billing.refund.requested"
BILLING_REFUND_APPROVED = "billing.refund.approved"
BILLING_REFUND_REJECTED = "billing.refund.rejected"
BILLING_REFUND_ISSUED = "billing.refund.issued"
BILLING_REFUND_FAILED = "billing.refund.failed"
BILLING_PLAN_CHANGED = "billing.subscription.plan_changed"
BILLING_SUBSCRIPTION_CANCELED = "billing.subscription.canceled"
BILLING_SUBSCRIPTION_RESUMED = "billing.subscription.resumed"
# Finance actions: a plan change / cancel / resume Stripe refused, and the
# webhook that confirmed an action.
BILLING_SUBSCRIPTION_ACTION_FAILED = "billing.subscription.action_failed"
BILLING_ACTION_CONFIRMED = "billing.action.confirmed"

# Downstream syncs and alerts
SYNC_OUTBOX_RETRIED = "sync.outbox.retried"
ALERT_ACKNOWLEDGED = "alerts.alert.acknowledged"

# Support tickets
SUPPORT_TICKET_SOLVED = "support.ticket.solved"
# Product webhook endpoints (provisioning): never the secret itself, only its hint
PRODUCT_ENDPOINT_CREATED = "provisioning.endpoint.created"
PRODUCT_ENDPOINT_UPDATED = "provisioning.endpoint.updated"
PRODUCT_ENDPOINT_SECRET_ROTATED = "provisioning.endpoint.secret_rotated"
# Account-state API tokens
API_TOKEN_CREATED = "customers.api_token.created"
API_TOKEN_REVOKED = "customers.api_token.revoked"

ALL_CODES: frozenset[str] = frozenset(
    value for name, value in dict(globals()).items() if name.isupper() and isinstance(value, str)
)

CHOICES = sorted((code, code) for code in ALL_CODES)
