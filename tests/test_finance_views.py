"""The finance action pages: every role against every action (allowed, or 403 with the
refused attempt audited), CSRF, the two-step confirmation and the waiting page."""

from __future__ import annotations

import re
import uuid

import pytest
import stripe
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit import codes
from audit.models import AuditEntry
from audit.services import audit_record
from billing.forms import RefundForm
from billing.models import ActionState, FinanceAction, RefundRequest
from console.story import customer_story
from tests.factories import StaffUserFactory
from tests.finance_support import approval_running_elsewhere, confirm, plan, subscriber

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _post_action(client, customer, action, *, charge_id="", plan_id="", request_pk=None):
    """A complete, confirmed submission of ``action`` as a hand-crafted POST."""
    key = str(uuid.uuid4())
    if action == "refund":
        return client.post(
            reverse("billing:refund", args=[customer.pk]),
            {
                "charge": charge_id,
                "amount": "1.00",
                "reason_code": "service_issue",
                "note": "outage on the 3rd",
                "key": key,
                "confirm": "Confirm",
            },
        )
    if action == "change_plan":
        return client.post(
            reverse("billing:change_plan", args=[customer.pk]),
            {
                "plan_id": plan_id,
                "proration": "create_prorations",
                "note": "asked for it",
                "key": key,
                "confirm": "Confirm",
            },
        )
    if action == "cancel":
        return client.post(
            reverse("billing:cancel", args=[customer.pk]),
            {"when": "period_end", "note": "leaving", "key": key, "confirm": "Confirm"},
        )
    if action == "resume":
        return client.post(
            reverse("billing:resume", args=[customer.pk]),
            {"note": "staying after all", "key": key, "confirm": "Confirm"},
        )
    return client.post(
        reverse("billing:refund_request", args=[request_pk]),
        {"decision": action, "note": "checked the ledger"},
    )


ALLOWED = {
    "owner": {"refund", "change_plan", "cancel", "resume", "approve", "reject"},
    "finance_admin": {"refund", "change_plan", "cancel", "resume", "approve", "reject"},
    "support_agent": {"refund"},  # a support agent's refund is a request
    "no_role": set(),
}
ACTIONS = ("refund", "change_plan", "cancel", "resume", "approve", "reject")


def test_every_role_against_every_action(stripe_api, webhook, staff_by_role):
    users = {**staff_by_role, "no_role": StaffUserFactory(username="norole@example.test")}
    basic, pro = plan("plan_basic", 900, "Basic"), plan("plan_pro", 5000, "Pro")
    customer, sub, charge_id = subscriber(webhook, basic)
    # Requests of the support agent for the approvers to decide on.
    requests = [
        RefundRequest.objects.create(
            key=uuid.uuid4(),
            customer=customer,
            charge_id=charge_id,
            amount=100,
            currency="usd",
            charge_amount=900,
            reason_code="other",
            note="n",
            requested_by=users["support_agent"],
        )
        for _ in range(8)
    ]
    next_plan = {basic.id: pro.id, pro.id: basic.id}
    outcomes = {}
    for role, user in users.items():
        client = _client(user)
        for action in ACTIONS:
            current = stripe.Subscription.retrieve(sub.id)["items"].data[0].plan.id
            denied_before = AuditEntry.objects.filter(
                action=codes.PERMISSION_DENIED, actor=user
            ).count()
            response = _post_action(
                client,
                customer,
                action,
                charge_id=charge_id,
                plan_id=next_plan[current],
                request_pk=requests.pop().pk if action in ("approve", "reject") else None,
            )
            outcomes[role, action] = response.status_code
            denied = (
                AuditEntry.objects.filter(action=codes.PERMISSION_DENIED, actor=user).count()
                - denied_before
            )
            if action in ALLOWED[role]:
                assert response.status_code == 302, (role, action, response.content[:500])
                assert denied == 0
            else:
                assert response.status_code == 403, (role, action)
                assert denied == 1, (role, action)
    # What the allowed ones did, in Stripe: 2 refunds + 2 approvals, 4 requests decided.
    assert len(stripe.Refund.list(charge=charge_id).data) == 4
    assert (
        FinanceAction.objects.filter(kind="change_plan", state=ActionState.SUBMITTED).count() == 2
    )
    assert (
        RefundRequest.objects.filter(requested_by=users["support_agent"], status="pending").count()
        == 1 + 4
    )
    assert RefundRequest.objects.filter(status="rejected").count() == 2
    forbidden = sorted(k for k, v in outcomes.items() if v == 403)
    assert len(forbidden) == 5 + 6


def test_refund_is_confirmed_in_two_steps_and_the_page_waits_for_stripe(
    stripe_api, webhook, finance_admin
):
    customer, _, charge_id = subscriber(webhook, plan("plan_pro", 5000, "Pro"))
    client = _client(finance_admin)
    page = client.get(reverse("console_customer", args=[customer.pk]))
    assert page.status_code == 200
    # The customer page loads its live finance panel from its own URL, after itself.
    live_url = reverse("console_customer_live", args=[customer.pk])
    assert live_url.encode() in page.content and b"finance-refund" not in page.content
    live = client.get(live_url, headers={"X-Requested-With": "fetch"})
    assert b'class="button finance-refund"' in live.content and b"<html" not in live.content
    panel_url = reverse("billing:customer_finance_panel", args=[customer.pk])
    page = client.get(panel_url, headers={"X-Requested-With": "fetch"})
    assert (
        b'class="button finance-refund"' in page.content and b"50.00 USD refundable" in page.content
    )
    assert b"<html" not in page.content  # a fragment for the page's loader
    standalone = client.get(panel_url)  # without JavaScript: a page of its own
    assert b"<html" in standalone.content and b'class="button finance-refund"' in standalone.content
    roleless = _client(StaffUserFactory(username="norole@example.test", role=None))
    assert roleless.get(panel_url).status_code == 403

    url = reverse("billing:refund", args=[customer.pk]) + f"?charge={charge_id}"
    form = client.get(url)
    key = re.search(rb'name="key" value="([0-9a-f-]+)"', form.content).group(1).decode()
    data = {
        "charge": charge_id,
        "amount": "12.50",
        "reason_code": "duplicate",
        "note": "charged twice",
        "key": key,
    }
    preview = client.post(url, data)
    assert b"Refund 12.50 USD of payment" in preview.content
    assert b"Still refundable afterwards: 37.50 USD" in preview.content
    assert not stripe.Refund.list(charge=charge_id).data  # nothing before Confirm

    first = client.post(url, {**data, "confirm": "Confirm"})
    second = client.post(url, {**data, "confirm": "Confirm"})  # double submit
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert [r.amount for r in stripe.Refund.list(charge=charge_id).data] == [1250]
    waiting = client.get(first["Location"])
    assert b"Submitted to Stripe \xe2\x80\x94 waiting for confirmation" in waiting.content
    assert b'http-equiv="refresh"' in waiting.content

    confirm(webhook, "charge.refunded", stripe.Charge.retrieve(charge_id))
    done = client.get(first["Location"])
    assert b"Confirmed by Stripe" in done.content and b'http-equiv="refresh"' not in done.content


def test_stripe_error_is_shown_in_plain_words(stripe_api, webhook, owner):
    customer, sub, _ = subscriber(webhook, plan("plan_basic", 900, "Basic"))
    plan("plan_pro", 5000, "Pro")
    stripe_api.fail_next(
        "POST",
        f"/v1/subscriptions/{sub.id}",
        status=402,
        type="card_error",
        code="card_declined",
        message="Your card was declined.",
    )
    response = _post_action(_client(owner), customer, "change_plan", plan_id="plan_pro")
    page = _client(owner).get(response["Location"])
    assert b"Not done: Stripe refused it" in page.content
    assert (
        b"The card network declined it: Your card was declined. Nothing was changed."
        in page.content
    )
    assert stripe.Subscription.retrieve(sub.id)["items"].data[0].plan.id == "plan_basic"
    customer.refresh_from_db()
    assert customer.plan_id == "plan_basic"
    assert AuditEntry.objects.filter(action=codes.BILLING_SUBSCRIPTION_ACTION_FAILED).count() == 1


def test_forms_need_csrf_and_the_requester_sees_but_cannot_decide(
    stripe_api, webhook, support_agent, owner
):
    customer, _, charge_id = subscriber(webhook, plan("plan_pro", 5000, "Pro"))
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(support_agent)
    refused = strict.post(
        reverse("billing:refund", args=[customer.pk]),
        {
            "charge": charge_id,
            "amount": "5",
            "reason_code": "other",
            "note": "x",
            "key": str(uuid.uuid4()),
            "confirm": "Confirm",
        },
    )
    assert refused.status_code == 403 and not RefundRequest.objects.exists()

    client = _client(support_agent)
    page = client.get(reverse("billing:customer_finance_panel", args=[customer.pk]))
    assert b"finance-request-refund" in page.content
    assert b'class="button finance-refund"' not in page.content
    assert b"finance-change-plan" not in page.content and b"finance-cancel" not in page.content
    response = _post_action(client, customer, "refund", charge_id=charge_id)
    request = RefundRequest.objects.get()
    assert response["Location"] == reverse("billing:refund_request", args=[request.pk])
    own = client.get(response["Location"])
    assert own.status_code == 200 and b"You made this request" in own.content
    assert b'value="approve"' not in own.content
    assert client.get(reverse("billing:refund_requests")).status_code == 200
    # Another support agent does not see it.
    other = _client(StaffUserFactory(username="support2@example.test", role="support_agent"))
    assert other.get(response["Location"]).status_code == 403
    # The owner sees it in the approvers' list.
    listing = _client(owner).get(reverse("billing:refund_requests"))
    assert f"#{request.pk}".encode() in listing.content


def test_approving_twice_makes_one_refund_and_never_an_error_page(
    stripe_api, webhook, support_agent, finance_admin, owner
):
    customer, _, charge_id = subscriber(webhook, plan("plan_pro", 5000, "Pro"))
    _post_action(_client(support_agent), customer, "refund", charge_id=charge_id)
    request = RefundRequest.objects.get()
    # An approval committed its decision and is still talking to Stripe (or died there).
    RefundRequest.objects.filter(pk=request.pk).update(
        status="approved", decided_by=owner, decided_at=timezone.now()
    )
    admin_client = _client(finance_admin)
    with approval_running_elsewhere(request.pk):
        busy = _post_action(admin_client, customer, "approve", request_pk=request.pk)
    assert busy.status_code == 200
    assert b"already being approved by someone else" in busy.content
    assert not stripe.Refund.list(charge=charge_id).data

    first = _post_action(admin_client, customer, "approve", request_pk=request.pk)
    double_click = _post_action(admin_client, customer, "approve", request_pk=request.pk)
    second_approver = _post_action(_client(owner), customer, "approve", request_pk=request.pk)
    action = FinanceAction.objects.get(refund_request=request)
    assert first.status_code == double_click.status_code == second_approver.status_code == 302
    assert {first["Location"], double_click["Location"], second_approver["Location"]} == {
        reverse("billing:finance_action", args=[action.pk])
    }
    assert [r.amount for r in stripe.Refund.list(charge=charge_id).data] == [100]


def test_support_agents_see_only_the_finance_actions_they_asked_for(
    stripe_api, webhook, support_agent, finance_admin, owner
):
    customer, _, charge_id = subscriber(webhook, plan("plan_pro", 5000, "Pro"))
    _post_action(_client(finance_admin), customer, "refund", charge_id=charge_id)
    admins = FinanceAction.objects.get()
    agent = _client(support_agent)
    _post_action(agent, customer, "refund", charge_id=charge_id)
    request = RefundRequest.objects.get()
    colleague = _client(StaffUserFactory(username="support2@example.test", role="support_agent"))
    customer_page = reverse("billing:customer_finance_panel", args=[customer.pk])
    request_url = reverse("billing:refund_request", args=[request.pk]).encode()
    admins_url = reverse("billing:finance_action", args=[admins.pk])

    page = agent.get(customer_page).content
    assert request_url in page and admins_url.encode() not in page
    assert request_url not in colleague.get(customer_page).content
    assert agent.get(admins_url).status_code == 403
    assert (
        AuditEntry.objects.filter(
            action=codes.PERMISSION_DENIED,
            actor=support_agent,
            data__attempted="view_finance_action",
        ).count()
        == 1
    )

    _post_action(_client(owner), customer, "approve", request_pk=request.pk)
    own_url = reverse(
        "billing:finance_action", args=[FinanceAction.objects.get(refund_request=request).pk]
    )
    assert agent.get(own_url).status_code == 200
    assert own_url.encode() in agent.get(customer_page).content
    assert colleague.get(own_url).status_code == 403
    finance_page = _client(finance_admin).get(customer_page).content
    assert own_url.encode() in finance_page and admins_url.encode() in finance_page

    # Staff finance decisions stay off a support agent's 360 timeline.
    audit_record(action=codes.BILLING_ACTION_CONFIRMED, target=customer, data={"action": admins.pk})

    def staff_titles(user):
        return [item.title for item in customer_story(customer, user, kind="staff").items]

    assert any("finance action confirmed" in title for title in staff_titles(owner))
    assert not any("finance action confirmed" in title for title in staff_titles(support_agent))


NOT_AMOUNTS = {
    "Infinity": b"Enter the amount as a plain number, such as 12.50.",
    "sNaN": b"Enter the amount as a plain number, such as 12.50.",
    "1e999999": b"That amount is too large: at most 12 digits before the decimal point.",
}


@pytest.mark.parametrize("raw", sorted(NOT_AMOUNTS))
def test_refund_form_refuses_amounts_that_are_not_plain_numbers(raw):
    form = RefundForm(
        {"amount": raw, "reason_code": "other", "note": "x", "key": str(uuid.uuid4())},
        currency="usd",
    )
    assert not form.is_valid()
    assert form.errors["amount"] == [NOT_AMOUNTS[raw].decode()]


def test_refund_page_answers_a_non_number_with_the_form_error(stripe_api, webhook, owner):
    customer, _, charge_id = subscriber(webhook, plan("plan_pro", 5000, "Pro"))
    client = _client(owner)
    url = reverse("billing:refund", args=[customer.pk])
    for raw, message in NOT_AMOUNTS.items():
        page = client.post(
            url,
            {
                "charge": charge_id,
                "amount": raw,
                "reason_code": "other",
                "note": "x",
                "key": str(uuid.uuid4()),
                "confirm": "Confirm",
            },
        )
        assert page.status_code == 200 and message in page.content
    assert not FinanceAction.objects.exists() and not stripe.Refund.list(charge=charge_id).data
