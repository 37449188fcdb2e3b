"""Each role holds exactly its permissions and reaches exactly its admin pages."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from customers.models import Customer
from tests.console_support import stripe_event
from tests.factories import CustomerFactory

SUPPORT = {
    "customers.view_customer",
    "customers.view_billing",
    "customers.request_refund",
    # support tickets and queues (which queues: guardian object permissions)
    "support.view_ticket",
    "support.view_supportqueue",
}
STRIPE_MIRROR = {
    f"djstripe.view_{m}"
    for m in (
        "event",
        "webhookeventtrigger",
        "customer",
        "subscription",
        "invoice",
        "charge",
        "refund",
        "dispute",
    )  # not paymentintent: its admin shows client_secret
}
FINANCE = (
    SUPPORT
    | STRIPE_MIRROR
    | {
        "customers.issue_refund",
        "customers.approve_refund",
        "customers.change_plan",
        "customers.cancel_subscription",
        "customers.replay_events",
        "audit.view_auditentry",
        "console.view_alert",
        "billing.view_stripeevent",
        "billing.view_handlerrun",
        "billing.view_reconcilerun",
        "delivery.view_outboxmessage",
        "delivery.retry_outboxmessage",
        "provisioning.view_productendpoint",
    }
)
OWNER = FINANCE | {
    "customers.add_customer",
    "customers.change_customer",
    "customers.erase_customer",
    "provisioning.add_productendpoint",
    "provisioning.change_productendpoint",
    "provisioning.rotate_secret",
    "auth.view_user",
    "auth.add_user",
    "auth.change_user",
    "auth.view_group",
    "axes.view_accessattempt",
    "axes.delete_accessattempt",
    "axes.view_accesslog",
    "axes.view_accessfailurelog",
    "django_rq.admin",
    # account-state API tokens
    "console.add_apitoken",
    "console.view_apitoken",
    "console.change_apitoken",
}


def group_permissions(name: str) -> set[str]:
    group = Group.objects.get(name=name)
    return {
        f"{p.content_type.app_label}.{p.codename}"
        for p in group.permissions.select_related("content_type")
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role, expected",
    [("owner", OWNER), ("finance_admin", FINANCE), ("support_agent", SUPPORT)],
)
def test_group_has_exactly_its_permissions(role, expected):
    assert group_permissions(role) == expected


@pytest.mark.django_db
def test_nobody_may_delete_customers_or_audit_entries():
    for role in ("owner", "finance_admin", "support_agent"):
        perms = group_permissions(role)
        assert "customers.delete_customer" not in perms
        assert not any(
            p.startswith(("audit.add_", "audit.change_", "audit.delete_")) for p in perms
        )


def customer_change_url() -> str:
    return f"/admin/customers/customer/{CustomerFactory().pk}/change/"


# page -> expected status for (owner, finance_admin, support_agent)
PAGES = {
    "/admin/": (200, 200, 200),
    "/admin/customers/customer/": (200, 200, 200),
    "/admin/customers/customer/add/": (200, 403, 403),
    "customer-change": (200, 200, 200),
    "/admin/audit/auditentry/": (200, 200, 403),
    "/admin/auth/user/": (200, 403, 403),
    "/admin/auth/user/add/": (200, 403, 403),
    "/admin/axes/accessattempt/": (200, 403, 403),
    "/admin/djstripe/event/": (200, 200, 403),
    "/admin/djstripe/paymentintent/": (403, 403, 403),  # shows client_secret unmasked
    "/admin/billing/stripeevent/": (200, 200, 403),
    "/admin/billing/handlerrun/": (200, 200, 403),
    "/admin/billing/reconcilerun/": (200, 200, 403),
    "/admin/console/alert/": (200, 200, 403),
    "/admin/django_rq/dashboard/": (200, 403, 403),
    "/admin/django_rq/dashboard/queues/0/": (200, 403, 403),
    "/admin/django_rq/dashboard/stats.json": (200, 403, 403),
    "/admin/support/ticket/": (200, 200, 200),
    "/admin/delivery/outboxmessage/": (200, 200, 403),
    # the console
    "/admin/console/": (200, 200, 200),
    "/admin/console/apitoken/": (200, 403, 403),
    "/admin/console/apitoken/add/": (200, 403, 403),
}


@pytest.mark.django_db
@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize(
    "index, role", list(enumerate(["owner", "finance_admin", "support_agent"]))
)
def test_admin_page_access_by_role(client, staff_by_role, page, index, role):
    client.force_login(staff_by_role[role])
    url = customer_change_url() if page == "customer-change" else page
    response = client.get(url)
    assert response.status_code == PAGES[page][index], (role, url)


@pytest.mark.django_db
def test_anonymous_is_sent_to_login(client):
    response = client.get("/admin/customers/customer/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


@pytest.mark.django_db
def test_support_agent_sees_billing_read_only_and_cannot_save(client, support_agent):
    customer = CustomerFactory(status="active", plan_name="Pro")
    client.force_login(support_agent)
    page = client.get(f"/admin/customers/customer/{customer.pk}/change/")
    assert b"Pro" in page.content
    assert b'name="_save"' not in page.content
    response = client.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        {"email": "changed@example.test", "name": "x"},
    )
    assert response.status_code == 403
    assert Customer.objects.get(pk=customer.pk).email == customer.email


@pytest.mark.django_db
def test_payment_intent_event_page_never_shows_the_client_secret(client, finance_admin):
    secret = "pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH"
    intent = {
        "id": "pi_3MtwBwLkdIwHu7ix28a3tqPa",
        "object": "payment_intent",
        "amount": 2000,
        "currency": "usd",
        "status": "requires_action",
        "client_secret": secret,
        "next_action": {
            "type": "redirect_to_url",
            "redirect_to_url": {
                "url": f"https://hooks.stripe.test/3ds?payment_intent_client_secret={secret}"
            },
        },
    }
    event = stripe_event(
        type="payment_intent.requires_action",
        object_id=intent["id"],
        payload={
            "id": "evt_pi",
            "type": "payment_intent.requires_action",
            "data": {"object": intent},
        },
    )
    client.force_login(finance_admin)
    response = client.get(f"/admin/billing/stripeevent/{event.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "pi_3MtwBwLkdIwHu7ix28a3tqPa" in page and "requires_action" in page
    assert "YrKJUKribcBjcG8HVhfZluoGH" not in page
