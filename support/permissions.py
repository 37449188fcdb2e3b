"""Who may see and work which support queue: django-guardian object permissions
(``support.work_queue`` per queue, granted to role groups by migration support.0002).
The disputes queue is granted to finance admins and owners only."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from support.models import SupportQueue, Ticket

WORK_QUEUE = "support.work_queue"


def visible_queues(user: Any) -> QuerySet[SupportQueue]:
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return SupportQueue.objects.none()
    return get_objects_for_user(user, WORK_QUEUE, klass=SupportQueue, accept_global_perms=False)


def can_work_ticket(user: Any, ticket: Ticket) -> bool:
    return bool(getattr(user, "is_active", False)) and user.has_perm(WORK_QUEUE, ticket.queue)
