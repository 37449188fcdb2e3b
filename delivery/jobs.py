"""Jobs of the ``sync`` queue. They take ids and call one service."""

from __future__ import annotations

from delivery import outbox


def outbox_deliver_job(message_pk: int) -> None:
    outbox.outbox_deliver(message_pk=message_pk)


def outbox_drain_job() -> None:
    outbox.outbox_drain()
