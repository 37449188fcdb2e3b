"""The delivery errors every outbox sender raises, and how the outbox treats each.

Vendor answers are translated into these at the adapter boundary (delivery/http.py), so
the outbox decides what to do from the class alone:

- ``RetryableError``: timeouts, connection errors, 5xx, 429 (with the vendor's
  ``Retry-After`` when given). Retried with exponential backoff and jitter until the
  retry horizon (``SYNC_RETRY_HORIZON_HOURS``, 72 h by default) has passed.
- ``PermanentError``: the vendor refused the request itself (4xx validation). Retrying
  cannot help: the row is dead at once and staff are alerted.
- ``ConfigurationError``: 401/403 or a missing token. Every row of the channel would fail
  the same way: the channel is paused with one alert, and probed again later.
"""

from __future__ import annotations


class DeliveryError(Exception):
    """``developer_message`` goes to the row's ``last_error``; ``user_message`` is fit
    for the console."""

    def __init__(self, developer_message: str, *, user_message: str = "") -> None:
        super().__init__(developer_message)
        self.developer_message = developer_message
        self.user_message = user_message or developer_message


class RetryableError(DeliveryError):
    def __init__(
        self, developer_message: str, *, retry_after: float | None = None, user_message: str = ""
    ) -> None:
        super().__init__(developer_message, user_message=user_message)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    pass


class ConfigurationError(DeliveryError):
    pass
