"""Who may do what with the outbox."""

from __future__ import annotations

from typing import Any

VIEW_OUTBOX = "delivery.view_outboxmessage"
RETRY_OUTBOX = "delivery.retry_outboxmessage"


def can_retry_outbox(user: Any) -> bool:
    """Owners and finance admins: a retry sends again what a vendor refused."""
    return user is not None and user.has_perm(RETRY_OUTBOX)
