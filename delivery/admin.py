"""The outbox in the console: read-only, filterable, with a retry action for owners and
finance admins (checked again in the service, audited as sync.outbox.retried)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from config.readonly_admin import ReadOnlyAdmin
from delivery import outbox
from delivery.models import OutboxMessage
from delivery.permissions import can_retry_outbox


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "channel",
        "kind",
        "state",
        "customer",
        "attempts",
        "next_attempt_at",
        "outcome",
        "created_at",
    )
    list_filter = ("state", "channel", "kind")
    search_fields = ("=dedupe_key", "=coalesce_key", "=external_id", "=customer__email")
    list_select_related = ("customer",)
    show_full_result_count = False
    actions = ["retry_messages"]
    exclude = ("payload",)
    readonly_fields = ("pretty_payload",)

    @admin.display(description="payload")
    def pretty_payload(self, obj: OutboxMessage) -> str:
        return format_html(
            "<pre class='sb-payload'>{}</pre>",
            json.dumps(obj.payload, indent=2, sort_keys=True),
        )

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not can_retry_outbox(request.user):
            actions.pop("retry_messages", None)
        return actions

    @admin.action(description="Retry selected dead, paused or failed messages")
    def retry_messages(self, request: HttpRequest, queryset: QuerySet[OutboxMessage]) -> None:
        try:
            count = outbox.outbox_retry(
                actor=request.user,
                message_pks=list(queryset.values_list("pk", flat=True)),
                reason="retried from the console",
            )
        except PermissionDenied:
            self.message_user(request, "You may not retry outbox messages.", messages.ERROR)
            return
        if count:
            self.message_user(
                request, f"{count} message(s) queued for delivery again.", messages.SUCCESS
            )
        else:
            self.message_user(
                request,
                "Nothing to retry: only dead, paused or failed messages can be retried.",
                messages.WARNING,
            )
