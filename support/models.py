"""Support tickets: one ``Ticket`` per real situation, mirrored to the helpdesk.

A ticket's ``situation_key`` (``payment_failed:<invoice id>``, ``dispute:<dispute id>``)
is unique, so however often Stripe retries a payment or an event is replayed, there is
one ticket. Queues are rows (``SupportQueue``) so that who may see a queue is an
object-level permission (django-guardian): the disputes queue is for finance admins and
owners, not every agent.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class SupportQueue(models.Model):
    slug = models.SlugField(unique=True)  # billing, disputes, retention, human_review
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["name"]
        permissions = [("work_queue", "Can see and work the tickets of this queue")]

    def __str__(self) -> str:
        return self.name


class TicketPriority(models.TextChoices):
    LOW = "low", "Low"
    NORMAL = "normal", "Normal"
    HIGH = "high", "High"
    URGENT = "urgent", "Urgent"


class TicketStatus(models.TextChoices):
    OPEN = "open", "Open"
    PENDING = "pending", "Pending"
    SOLVED = "solved", "Solved"


class Ticket(models.Model):
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.PROTECT, related_name="tickets"
    )
    queue = models.ForeignKey(SupportQueue, on_delete=models.PROTECT, related_name="tickets")
    situation_key = models.CharField(max_length=255, unique=True)
    subject = models.CharField(max_length=200)
    body = models.TextField(blank=True, help_text="Never card data or secrets")
    priority = models.CharField(
        max_length=8, choices=TicketPriority.choices, default=TicketPriority.NORMAL
    )
    status = models.CharField(max_length=8, choices=TicketStatus.choices, default=TicketStatus.OPEN)
    external_id = models.CharField(max_length=64, blank=True, help_text="The helpdesk's ticket id")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    solved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["queue", "status", "-created_at"]),
            models.Index(fields=["customer", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.subject}"
