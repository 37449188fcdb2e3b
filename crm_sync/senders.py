"""Which function delivers an outbox row, by channel: the one registry.

A sender takes the claimed ``OutboxMessage`` and either returns a ``Delivered`` or
raises one of crm_sync/errors.py. Senders must be idempotent: a row can be delivered
again after a worker died between the vendor's answer and the row's update (upserts
match on stored ids and stable keys; tickets on their external id).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.utils.module_loading import import_string

from crm_sync.models import Channel

if TYPE_CHECKING:
    from crm_sync.models import OutboxMessage


@dataclass(frozen=True)
class Delivered:
    outcome: str
    external_id: str = ""


Sender = Callable[["OutboxMessage"], Delivered]

# Dotted paths, resolved at delivery time: the senders live in the apps that own the
# vendor (support/ for helpdesk and email), which import this app.
SENDERS: dict[str, str] = {
    Channel.CRM: "crm_sync.sync.deliver_crm",
    Channel.HELPDESK: "support.delivery.deliver_helpdesk",
    Channel.EMAIL: "support.emails.deliver_email",
    Channel.SLACK: "crm_sync.slack.deliver_slack",
}


def sender_for(channel: str) -> Sender:
    try:
        return import_string(SENDERS[channel])
    except KeyError:
        raise LookupError(f"no sender for outbox channel {channel!r}") from None
