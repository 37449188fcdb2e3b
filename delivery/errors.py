"""The delivery errors every outbox sender raises, and how the outbox treats each.

Vendor answers are translated into these at the adapter boundary (delivery/http.py), so
the outbox decides what to do from the class alone:

- ``RetryableError``: timeouts, connection errors, 5xx, 429 (with the vendor's
  ``Retry-After`` when given). Retried with exponential backoff and jitter until the
  retry horizon (``SYNC_RETRY_HORIZON_HOURS``, 72 h by default) has passed.
- ``PermanentError``: the vendor refused the request itself (4xx validation). Retrying
  cannot help: the row is dead at once and staff are alerted.
- ``ConfigurationError``: 401/403, a missing token, or a setup the vendor lacks (a
  HubSpot property Switchboard writes that nobody created). Every row of the channel
  would fail the same way: the channel is paused with one alert whose title is the
  ``user_message`` (so it must name the real cause), and probed again later.

``status`` and ``body`` keep the vendor's answer, so an adapter can turn a generic class
into a sharper one (a HubSpot 400 naming a missing property is a configuration error).
"""

from __future__ import annotations

from typing import Any


class DeliveryError(Exception):
    """``developer_message`` goes to the row's ``last_error``; ``user_message`` is fit
    for the console."""

    def __init__(
        self,
        developer_message: str,
        *,
        user_message: str = "",
        status: int = 0,
        body: Any = None,
    ) -> None:
        super().__init__(developer_message)
        self.developer_message = developer_message
        self.user_message = user_message or developer_message
        self.status = status
        self.body = body


class RetryableError(DeliveryError):
    def __init__(
        self,
        developer_message: str,
        *,
        retry_after: float | None = None,
        user_message: str = "",
        status: int = 0,
        body: Any = None,
    ) -> None:
        super().__init__(developer_message, user_message=user_message, status=status, body=body)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    pass


class ConfigurationError(DeliveryError):
    pass
