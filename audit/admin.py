"""Read-only audit log in the admin: nobody, superusers included, adds, edits or deletes."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils.html import format_html

from audit.alerts import alert_acknowledge, can_acknowledge_alerts
from audit.models import Alert, AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_label_or_system", "action", "target_label", "request_id")
    list_filter = ("action", "created_at")
    search_fields = ("actor_label", "target_id", "target_label", "request_id", "action")
    date_hierarchy = "created_at"
    list_select_related = ("target_type",)
    readonly_fields = (
        "created_at", "actor_label", "action", "target_type", "target_id", "target_label",
        "pretty_data", "request_id", "ip_address",
    )
    fields = readonly_fields
    actions = None

    @admin.display(description="actor")
    def actor_label_or_system(self, obj: AuditEntry) -> str:
        return obj.actor_label or "system"

    @admin.display(description="data")
    def pretty_data(self, obj: AuditEntry) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.data, indent=2, sort_keys=True))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("raised_at", "title", "state", "delivered_at", "cleared_at")
    list_filter = ("state",)
    search_fields = ("title", "key")
    readonly_fields = ("key", "title", "detail", "state", "raised_at", "cleared_at",
                       "acknowledged_by", "delivered_at", "delivery_error")
    actions = ["acknowledge"]

    @admin.action(description="Acknowledge selected alerts (audited)")
    def acknowledge(self, request: HttpRequest, queryset: Any) -> None:
        try:
            count = sum(alert_acknowledge(actor=request.user, alert_pk=pk)
                        for pk in queryset.values_list("pk", flat=True))
        except PermissionDenied:
            self.message_user(request, "You may not acknowledge alerts.", messages.ERROR)
            return
        self.message_user(request, f"{count} alert(s) acknowledged.", messages.SUCCESS)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        if not can_acknowledge_alerts(request.user):
            actions.pop("acknowledge", None)
        return actions

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Alert | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Alert | None = None) -> bool:
        return False
