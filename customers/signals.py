"""What the canonical customer tells the apps that hold data about it.

``customer_erasing`` is sent by ``customers.services.customer_erase`` inside its
transaction, before the customer's own fields are blanked, with plain values only:
``customer_id``, ``stripe_customer_id``, ``crm_contact_id``, ``helpdesk_user_id`` (each ""
when absent) and ``terms`` (the personal strings to scrub: email, name). Every app that
stores personal data about customers connects a receiver in its ``AppConfig.ready`` and
scrubs its own rows, or asks its vendor to, through the outbox, in that same transaction:
the erasure commits everywhere or nowhere.
"""

from __future__ import annotations

from django.dispatch import Signal

customer_erasing = Signal()
