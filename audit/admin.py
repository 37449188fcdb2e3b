"""Read-only audit log in the admin: nobody, superusers included, adds, edits or deletes."""

from __future__ import annotations

import json

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "actor_label_or_system", "action", "target_label", "request_id")
    list_filter = ("action", "created_at")
    search_fields = ("actor_label", "target_id", "target_label", "request_id", "action")
    date_hierarchy = "created_at"
    list_select_related = ("target_type",)
    readonly_fields = (
        "created_at",
        "actor_label",
        "action",
        "target_type",
        "target_id",
        "target_label",
        "pretty_data",
        "request_id",
        "ip_address",
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
