"""Stripe events, handler runs and reconcile runs in the console: read-only, with replay
actions for owners and finance admins (checked again in the services, and audited)."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from audit.masking import mask_text
from audit.services import mask_secrets
from billing import services
from billing.models import HandlerRun, ReconcileRun, StripeEvent
from config.readonly_admin import ReadOnlyAdmin
from customers.permissions import REPLAY_EVENTS


class HandlerRunInline(admin.TabularInline):
    model = HandlerRun
    fields = (
        "handler",
        "status",
        "attempts",
        "note",
        "last_error",
        "next_attempt_at",
        "finished_at",
    )
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = (
        "stripe_id",
        "type",
        "stripe_customer_id",
        "created",
        "received_at",
        "status",
        "delivery_count",
    )
    list_filter = ("status", "type", "received_at")
    search_fields = ("=stripe_id", "=stripe_customer_id", "=object_id", "type")
    date_hierarchy = "received_at"
    show_full_result_count = False
    inlines = [HandlerRunInline]
    actions = ["replay_events"]
    exclude = ("payload",)
    readonly_fields = ("pretty_payload",)

    @admin.display(description="payload")
    def pretty_payload(self, obj: StripeEvent) -> str:
        """The payload as stored, masked for display: a payment_intent's client_secret
        (enough to confirm the payment from a browser), keys, tokens and card numbers
        never reach the page."""
        text = json.dumps(mask_secrets(obj.payload), indent=2, sort_keys=True)
        return format_html("<pre class='sb-payload'>{}</pre>", mask_text(text))

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not request.user.has_perm(REPLAY_EVENTS):
            actions.pop("replay_events", None)
        return actions

    @admin.action(description="Reprocess selected events (never duplicates an effect)")
    def replay_events(self, request: HttpRequest, queryset: QuerySet[StripeEvent]) -> None:
        try:
            count = services.events_replay(
                actor=request.user,
                event_pks=list(queryset.values_list("pk", flat=True)),
                reason="replayed from the console",
            )
        except PermissionDenied:
            self.message_user(request, "You may not replay Stripe events.", messages.ERROR)
            return
        self.message_user(request, f"{count} event(s) queued for reprocessing.", messages.SUCCESS)


@admin.register(HandlerRun)
class HandlerRunAdmin(ReadOnlyAdmin):
    list_display = (
        "event",
        "handler",
        "status",
        "attempts",
        "next_attempt_at",
        "finished_at",
        "short_error",
    )
    list_filter = ("status", "handler")
    search_fields = ("=event__stripe_id", "=event__stripe_customer_id")
    list_select_related = ("event",)
    show_full_result_count = False
    actions = ["retry_runs"]

    @admin.display(description="last error")
    def short_error(self, obj: HandlerRun) -> str:
        return obj.last_error[:80]

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not request.user.has_perm(REPLAY_EVENTS):
            actions.pop("retry_runs", None)
        return actions

    @admin.action(description="Retry selected dead or failed runs")
    def retry_runs(self, request: HttpRequest, queryset: QuerySet[HandlerRun]) -> None:
        try:
            count = services.handler_runs_replay(
                actor=request.user,
                run_pks=list(queryset.values_list("pk", flat=True)),
                reason="retried from the console",
            )
        except PermissionDenied:
            self.message_user(request, "You may not retry handler runs.", messages.ERROR)
            return
        self.message_user(request, f"{count} run(s) queued again.", messages.SUCCESS)


@admin.register(ReconcileRun)
class ReconcileRunAdmin(ReadOnlyAdmin):
    list_display = ("started_at", "finished_at", "repair", "drift_total", "drift_counts", "error")
    list_filter = ("repair",)
