"""The three staff roles and exactly the permissions each holds.

This table is the single source of truth. Migration ``customers.0002`` creates the
groups; a ``post_migrate`` hook (customers.apps) re-applies the table after every
migrate, so a permission added to it later lands in the groups and a permission
granted to a group by hand is taken away again. Grant a person a role, never a
permission.
"""

from __future__ import annotations

from typing import Any

from audit import permissions as audit_permissions
from customers import permissions

OWNER = "owner"
FINANCE_ADMIN = "finance_admin"
SUPPORT_AGENT = "support_agent"
ROLES = (OWNER, FINANCE_ADMIN, SUPPORT_AGENT)

# Not "paymentintent": dj-stripe's PaymentIntent admin shows the stored Stripe object
# (stripe_data) unmasked, client_secret included. Payment intents are read through our
# own masked StripeEvent page instead.
_STRIPE_MIRROR_VIEW = [
    f"djstripe.view_{model}"
    for model in (
        "event",
        "webhookeventtrigger",
        "customer",
        "subscription",
        "invoice",
        "charge",
        "refund",
        "dispute",
    )
]

# Support tickets and queues (which queues each role works is per queue, with
# django-guardian: migration support.0002).
_SUPPORT_VIEW = ["support.view_ticket", "support.view_supportqueue"]

SUPPORT_AGENT_PERMISSIONS = [
    permissions.VIEW_CUSTOMER,
    permissions.VIEW_BILLING,
    permissions.REQUEST_REFUND,
    *_SUPPORT_VIEW,
]

FINANCE_ADMIN_PERMISSIONS = [
    permissions.VIEW_CUSTOMER,
    permissions.VIEW_BILLING,
    permissions.REQUEST_REFUND,
    permissions.ISSUE_REFUND,
    permissions.APPROVE_REFUND,
    permissions.CHANGE_PLAN,
    permissions.CANCEL_SUBSCRIPTION,
    permissions.REPLAY_EVENTS,
    audit_permissions.VIEW_AUDITENTRY,
    "console.view_alert",
    # the event inbox, handler runs and reconcile runs
    "billing.view_stripeevent",
    "billing.view_handlerrun",
    "billing.view_reconcilerun",
    *_STRIPE_MIRROR_VIEW,
    # downstream syncs: the outbox (and retrying a dead or paused row) and tickets
    "delivery.view_outboxmessage",
    "delivery.retry_outboxmessage",
    *_SUPPORT_VIEW,
    # the product's webhook endpoints and their delivery logs (read only)
    "provisioning.view_productendpoint",
]

OWNER_PERMISSIONS = [
    *FINANCE_ADMIN_PERMISSIONS,
    permissions.ADD_CUSTOMER,
    permissions.CHANGE_CUSTOMER,
    # erasing a person's data on request (irreversible, audited)
    permissions.ERASE_CUSTOMER,
    # the product's webhook endpoints: add, enable/disable, rotate the signing secret
    "provisioning.add_productendpoint",
    "provisioning.change_productendpoint",
    "provisioning.rotate_secret",
    # staff management
    "auth.view_user",
    permissions.ADD_USER,
    permissions.CHANGE_USER,
    "auth.view_group",
    # login lockouts: see them and lift them
    "axes.view_accessattempt",
    "axes.delete_accessattempt",
    "axes.view_accesslog",
    "axes.view_accessfailurelog",
    # the job queue dashboard
    "django_rq.admin",
    # account-state API tokens: create, see, revoke
    "console.add_apitoken",
    "console.view_apitoken",
    "console.change_apitoken",
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    OWNER: OWNER_PERMISSIONS,
    FINANCE_ADMIN: FINANCE_ADMIN_PERMISSIONS,
    SUPPORT_AGENT: SUPPORT_AGENT_PERMISSIONS,
}


def sync_role_groups(apps: Any, *, strict: bool) -> None:
    """Make each role's group hold exactly the permissions in ROLE_PERMISSIONS.

    ``apps`` is a migration's historical registry or ``django.apps.apps``. With
    ``strict`` an unknown permission is an error (after a full migrate every permission
    must exist); without it, permissions of apps not migrated yet are skipped.
    """
    from django.contrib.auth.management import create_permissions

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    # Permissions are normally created after all migrations (post_migrate); create
    # those of the apps known so far now, so the groups can reference them.
    for app_config in apps.get_app_configs():
        original = getattr(app_config, "models_module", None)
        app_config.models_module = original or True
        try:
            create_permissions(app_config, apps=apps, verbosity=0)
        finally:
            app_config.models_module = original

    for role, names in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = []
        for name in names:
            app_label, codename = name.split(".", 1)
            perm = Permission.objects.filter(
                content_type__app_label=app_label, codename=codename
            ).first()
            if perm is None:
                if strict:
                    raise LookupError(f"role {role}: permission {name} does not exist")
                continue
            wanted.append(perm)
        group.permissions.set(wanted)
