"""Which function delivers an outbox row, by channel: the one registry.

A sender takes the claimed ``OutboxMessage`` and either returns a ``Delivered`` or
raises one of delivery/errors.py. Senders must be idempotent: a row can be delivered
again after a worker died between the vendor's answer and the row's update (upserts
match on stored ids and stable keys; tickets on their external id).

``email`` and ``slack`` are built in (registered by ``delivery.apps``); the apps that own
a vendor register its channel in their own ``AppConfig.ready`` (crm_sync: ``crm``,
support: ``helpdesk``), so this app never imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from delivery.models import OutboxMessage

# The built-in channels.
EMAIL = "email"
SLACK = "slack"


@dataclass(frozen=True)
class Delivered:
    outcome: str
    external_id: str = ""


Sender = Callable[["OutboxMessage"], Delivered]


@dataclass(frozen=True)
class Channel:
    name: str
    label: str
    sender: Sender


_CHANNELS: dict[str, Channel] = {}


def register_channel(name: str, sender: Sender, *, label: str = "") -> None:
    """Make ``name`` a channel delivered by ``sender``. Registering the same name again
    replaces the sender (a test can swap one in); names are short and lower case."""
    if not name or len(name) > 20 or not name.replace("_", "").isalnum() or not name.islower():
        raise ValueError(f"invalid outbox channel name {name!r}")
    _CHANNELS[name] = Channel(name=name, label=label or name.capitalize(), sender=sender)


def is_channel(name: str) -> bool:
    return name in _CHANNELS


def channels() -> list[Channel]:
    return list(_CHANNELS.values())


def channel_label(name: str) -> str:
    channel = _CHANNELS.get(name)
    return channel.label if channel else name


def sender_for(name: str) -> Sender:
    try:
        return _CHANNELS[name].sender
    except KeyError:
        raise LookupError(f"no sender for outbox channel {name!r}") from None
