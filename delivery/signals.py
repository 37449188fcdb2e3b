"""What the outbox tells the apps that own its channels.

``message_dead`` is sent, inside the transaction that marks the row dead, with plain
ids only (``message_id``, ``channel``, ``kind``, ``customer_id`` or None and a
``reason`` fit for the console), so a subscriber (support opens a review ticket) acts in
the same transaction and this app imports none of them.
"""

from __future__ import annotations

from django.dispatch import Signal

message_dead = Signal()
