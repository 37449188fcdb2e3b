"""Writes to the canonical customer record and to staff accounts.

Billing fields are not written here: they belong to the Stripe pipeline
(billing/services), which calls in with ``actor=None``.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone

from audit import codes
from audit.services import audit_record
from customers import roles
from customers.models import Customer
from customers.permissions import ADD_CUSTOMER, ADD_USER, CHANGE_CUSTOMER, CHANGE_USER

# Fields staff may edit by hand; everything else is owned by the pipeline.
EDITABLE_FIELDS = (
    "email",
    "name",
    "stripe_customer_id",
    "crm_contact_id",
    "helpdesk_user_id",
    "product_user_id",
    "stripe_account_id",
    "marketplace_role",
)


def _snapshot(customer: Customer, fields: tuple[str, ...]) -> dict[str, Any]:
    return {field: getattr(customer, field) for field in fields}


def customer_create(*, actor: Any | None, email: str, name: str = "", **links: Any) -> Customer:
    """Create a customer by hand (owners) or from the system (``actor=None``)."""
    if actor is not None and not actor.has_perm(ADD_CUSTOMER):
        raise PermissionDenied("You may not add customers.")
    unknown = set(links) - set(EDITABLE_FIELDS)
    if unknown:
        raise TypeError(f"not editable on a customer: {', '.join(sorted(unknown))}")
    customer = Customer(email=email, name=name, **links)
    customer.full_clean()
    with transaction.atomic():
        customer.save(force_insert=True)
        audit_record(
            action=codes.CUSTOMER_CREATED,
            actor=actor,
            target=customer,
            data={"after": _snapshot(customer, EDITABLE_FIELDS)},
        )
    return customer


def customer_update(
    *, actor: Any | None, customer_id: Any, changes: dict[str, Any], reason: str = ""
) -> Customer:
    """Apply hand edits to the editable fields, validated, locked and audited."""
    if actor is not None and not actor.has_perm(CHANGE_CUSTOMER):
        raise PermissionDenied("You may not change customers.")
    forbidden = set(changes) - set(EDITABLE_FIELDS)
    if forbidden:
        raise ValidationError(
            f"These fields are written by the Stripe pipeline, not by hand: "
            f"{', '.join(sorted(forbidden))}."
        )
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        everything_before = _snapshot(customer, EDITABLE_FIELDS)
        for field, value in changes.items():
            setattr(customer, field, value)
        customer.full_clean()
        # clean() may follow one field with another (a connected account makes a seller).
        touched = tuple(
            f
            for f in EDITABLE_FIELDS
            if f in changes or getattr(customer, f) != everything_before[f]
        )
        before = {f: everything_before[f] for f in touched}
        after = _snapshot(customer, touched)
        if before == after:
            return customer
        customer.save(update_fields=[*touched, "updated_at"])
        audit_record(
            action=codes.CUSTOMER_UPDATED,
            actor=actor,
            target=customer,
            data={"before": before, "after": after, "reason": reason},
        )
    return customer


def staff_user_create(
    *, actor: Any | None, email: str, role: str, password: str | None = None
) -> tuple[Any, str | None]:
    """Create (or re-role) a staff login for ``email`` with one role.

    Returns the user and the generated password when none was given (``None`` when a
    password was supplied or the user already existed and kept theirs).
    """
    if role not in roles.ROLES:
        raise ValidationError(f"Unknown role {role!r}. Choose one of: {', '.join(roles.ROLES)}.")
    if actor is not None and not actor.has_perm(ADD_USER):
        raise PermissionDenied("You may not create staff users.")
    User = get_user_model()
    email = User.objects.normalize_email(email.strip())
    validate_email(email)
    generated: str | None = None
    with transaction.atomic():
        user = User.objects.select_for_update().filter(username__iexact=email).first()
        created = user is None
        if created:
            user = User(username=email, email=email, is_staff=True, is_active=True)
        if created or password:
            if password is None:
                generated = password = secrets.token_urlsafe(15)
            validate_password(password, user)
            user.set_password(password)
        user.is_staff = True
        user.save()
        before_roles = sorted(
            user.groups.filter(name__in=roles.ROLES).values_list("name", flat=True)
        )
        user.groups.remove(*Group.objects.filter(name__in=roles.ROLES).exclude(name=role))
        user.groups.add(Group.objects.get(name=role))
        if created:
            audit_record(
                action=codes.STAFF_USER_CREATED,
                actor=actor,
                target=user,
                data={"email": email, "role": role},
            )
        else:
            if before_roles != [role]:
                audit_record(
                    action=codes.STAFF_ROLE_CHANGED,
                    actor=actor,
                    target=user,
                    data={"before": before_roles, "after": [role]},
                )
            if password:
                audit_record(action=codes.STAFF_PASSWORD_SET, actor=actor, target=user, data={})
    return user, generated


# Fields of a staff login whose change is recorded by name (never a value: a password
# hash is not an audit detail).
STAFF_ADMIN_FIELDS = ("username", "email", "first_name", "last_name", "is_active", "is_staff")


def staff_user_record_admin_save(
    *, actor: Any, user: Any, created: bool, changed: list[str]
) -> None:
    """Audit a staff login created or edited in Admin -> Users (the admin saved it).

    Roles, single permissions and superuser status cannot be edited there (see
    customers/admin.py); they change through ``staff_user_create`` only.
    """
    if not actor.has_perm(ADD_USER if created else CHANGE_USER):
        raise PermissionDenied("You may not manage staff users.")
    fields = sorted(f for f in changed if f in STAFF_ADMIN_FIELDS)
    if created:
        audit_record(
            action=codes.STAFF_USER_CREATED,
            actor=actor,
            target=user,
            data={"email": user.email or user.username, "role": None},
        )
    elif fields:
        audit_record(
            action=codes.STAFF_USER_UPDATED,
            actor=actor,
            target=user,
            data={"changed": fields, "after": {f: getattr(user, f) for f in fields}},
        )


def staff_user_record_password_set(*, actor: Any, user: Any) -> None:
    """Audit a password set by another person in Admin -> Users."""
    if not actor.has_perm(CHANGE_USER):
        raise PermissionDenied("You may not manage staff users.")
    audit_record(action=codes.STAFF_PASSWORD_SET, actor=actor, target=user, data={})


def _erasure_tombstone(customer: Customer) -> str:
    return f"erased customer {customer.pk}"


def customer_erase(*, actor: Any | None, customer_id: Any, reason: str) -> bool:
    """Erase a person's data everywhere on request (GDPR Art. 17). Returns False when the
    customer was already erased.

    In one transaction: the audit trail keeps every entry but the person's data in it is
    replaced by a tombstone (``audit.services.audit_redact``, the one audited redaction
    path); every app holding data about the customer scrubs it, and asks its vendor to
    delete it through the outbox (receivers of ``customers.signals.customer_erasing``:
    event payloads, ticket bodies, outbox payloads, the CRM contact by HubSpot's GDPR
    delete, the helpdesk user by Zendesk's permanent deletion); the customer's own
    personal fields are blanked and ``erased_at`` set, so later Stripe events never write
    them back. The erasure is itself audited. Owners only (``actor=None``: the
    ``customer_erase`` management command, run by whoever holds the server).

    The customer row stays (with its ids, status and history), so the books still add up
    and a late Stripe event finds the erased record instead of creating a new one.
    """
    from audit.services import audit_redact
    from customers.permissions import ERASE_CUSTOMER
    from customers.signals import customer_erasing

    if actor is not None and not actor.has_perm(ERASE_CUSTOMER):
        raise PermissionDenied("You may not erase customers' personal data.")
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(
            "Say why (e.g. the request's reference): it is kept in the audit log."
        )
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer_id)
        if customer.erased_at is not None:
            return False
        terms = [customer.email, customer.name]
        redacted = audit_redact(
            target=customer, terms=terms, tombstone=_erasure_tombstone(customer)
        )
        customer_erasing.send(
            sender=Customer,
            customer_id=customer.pk,
            stripe_customer_id=customer.stripe_customer_id or "",
            crm_contact_id=customer.crm_contact_id or "",
            helpdesk_user_id=customer.helpdesk_user_id or "",
            terms=[t for t in terms if t],
        )
        customer.email = ""
        customer.name = ""
        customer.review_reason = ""
        customer.erased_at = timezone.now()
        customer.save(update_fields=["email", "name", "review_reason", "erased_at", "updated_at"])
        audit_record(
            action=codes.CUSTOMER_ERASED,
            actor=actor,
            target=customer,
            data={
                "reason": reason[:500],
                "audit_entries_redacted": redacted,
                "crm_contact": bool(customer.crm_contact_id),
                "helpdesk_user": bool(customer.helpdesk_user_id),
            },
        )
    return True
