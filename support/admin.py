"""Support agents work their queues here. Which tickets a person sees is decided on the
server from the queue's object permission (support/permissions.py); the disputes queue
is for finance admins and owners. Solving goes through the service (mirrored to the
helpdesk, audited)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from config.readonly_admin import ReadOnlyAdmin
from support import services
from support.models import SupportQueue, Ticket
from support.permissions import visible_queues


class VisibleQueueFilter(admin.SimpleListFilter):
    title = "queue"
    parameter_name = "queue"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(q.slug, q.name) for q in visible_queues(request.user)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> QuerySet[Ticket]:
        return queryset.filter(queue__slug=self.value()) if self.value() else queryset


@admin.register(SupportQueue)
class SupportQueueAdmin(ReadOnlyAdmin):
    list_display = ("name", "slug", "description")

    def get_queryset(self, request: HttpRequest) -> QuerySet[SupportQueue]:
        return visible_queues(request.user)


@admin.register(Ticket)
class TicketAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "subject",
        "queue",
        "priority",
        "status",
        "customer",
        "external_id",
        "created_at",
    )
    list_filter = (VisibleQueueFilter, "status", "priority")
    search_fields = ("=situation_key", "=external_id", "=customer__email", "subject")
    list_select_related = ("queue", "customer")
    show_full_result_count = False
    actions = ["solve_tickets"]
    fields = (
        "subject",
        "queue",
        "priority",
        "status",
        "customer",
        "situation_key",
        "body",
        "external_id",
        "created_at",
        "solved_at",
    )
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[Ticket]:
        # Server-side: a ticket of a queue the person may not work is not there for them,
        # in the list, in search and by URL.
        return super().get_queryset(request).filter(queue__in=visible_queues(request.user))

    @admin.action(description="Mark selected tickets solved (updates the helpdesk)")
    def solve_tickets(self, request: HttpRequest, queryset: QuerySet[Ticket]) -> None:
        try:
            count = services.tickets_solve(
                actor=request.user,
                ticket_pks=list(queryset.values_list("pk", flat=True)),
                note=f"Solved by {request.user.get_username()} in Switchboard.",
            )
        except PermissionDenied:
            self.message_user(request, "You may not work tickets of that queue.", messages.ERROR)
            return
        self.message_user(request, f"{count} ticket(s) solved.", messages.SUCCESS)
