"""The append-only audit log.

Rows are written only by :func:`audit.services.audit_record`. A PostgreSQL trigger
(migration 0002) rejects every UPDATE and DELETE, so not even a superuser's shell or a
buggy migration can rewrite history. Users and content types referenced by an entry
are protected from deletion for the same reason: deactivate staff, don't delete them.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models

from audit import codes


class AuditEntry(models.Model):
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_entries",
        help_text="Staff member who acted; empty for system work (webhooks, jobs).",
    )
    actor_label = models.CharField(max_length=254, blank=True, help_text="Actor as shown then.")
    action = models.CharField(max_length=80, choices=codes.CHOICES, db_index=True)
    target_type = models.ForeignKey(
        ContentType, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    data = models.JSONField(default=dict, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["target_type", "target_id", "-created_at"])]
        verbose_name = "audit entry"
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        who = self.actor_label or "system"
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {who} {self.action}"
