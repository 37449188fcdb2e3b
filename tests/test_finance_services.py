"""Finance actions against localstripe, PostgreSQL and Redis: refunds (partial, over the
refundable amount, double submit, two-person rule), plan change, cancel, resume, and
Stripe refusing. Local billing state changes only when the confirming webhook is
processed by the pipeline."""

from __future__ import annotations

import uuid

import pytest
import stripe
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from audit import codes
from audit.models import AuditEntry
from billing import actions, refunds, subscriptions
from billing.adapters import stripe_client
from billing.adapters.stripe_client import StripeActionError
from billing.models import ActionState, FinanceAction, RefundRequest
from billing.permissions import VIEW_REFUNDREQUEST
from tests.factories import StaffUserFactory
from tests.finance_support import approval_running_elsewhere, confirm, plan, subscriber
from tests.stripe_support.fixtures import drain

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def _refund(actor, customer, charge_id, amount, key=None, **kw):
    return refunds.refund_submit(
        actor=actor,
        customer_id=customer.pk,
        charge_id=charge_id,
        amount=amount,
        reason_code=kw.get("reason", "requested_by_customer"),
        note=kw.get("note", "customer asked"),
        submission_key=key or uuid.uuid4(),
    )


def test_partial_refund_then_over_refund_is_refused_without_calling_stripe(
    stripe_api, webhook, finance_admin
):
    customer, _, charge_id = subscriber(webhook, plan("plan_pro", 5000, "Pro"))
    action = _refund(finance_admin, customer, charge_id, 2000)
    assert (action.state, action.amount, action.currency) == (ActionState.SUBMITTED, 2000, "usd")
    assert stripe.Charge.retrieve(charge_id).amount_refunded == 2000
    customer.refresh_from_db()
    assert customer.last_payment_status != "partially_refunded"  # until charge.refunded

    calls = stripe_client.api_calls.total
    with pytest.raises(ValidationError) as refused:
        _refund(finance_admin, customer, charge_id, 3500)
    assert "more than what is still refundable" in refused.value.messages[0]
    assert "30.00 USD" in refused.value.messages[0]
    assert stripe_client.api_calls.total == calls  # refused from our own rows: no call
    assert len(stripe.Refund.list(charge=charge_id).data) == 1
    assert FinanceAction.objects.count() == 1


def test_double_submit_and_resend_make_one_refund_in_stripe(stripe_api, webhook, owner):
    customer, _, charge_id = subscriber(webhook, plan("plan_pro", 5000, "Pro"))
    key = uuid.uuid4()
    first = _refund(owner, customer, charge_id, 1000, key=key)
    second = _refund(owner, customer, charge_id, 1000, key=key)
    assert first.pk == second.pk
    # The same row sent again (a retry after a lost answer) reuses its idempotency key:
    # Stripe answers with the first refund instead of making another.
    FinanceAction.objects.filter(pk=first.pk).update(state=ActionState.REQUESTED)
    resent = actions.action_resend(actor=owner, action_id=first.pk)
    assert resent.stripe_object_id == first.stripe_object_id
    assert [r.amount for r in stripe.Refund.list(charge=charge_id).data] == [1000]


def test_refund_over_threshold_needs_another_approver_and_is_confirmed_by_charge_refunded(
    stripe_api, webhook, settings, finance_admin, django_capture_on_commit_callbacks
):
    settings.REFUND_APPROVAL_THRESHOLD = 1000
    other_admin = StaffUserFactory(username="finance2@example.test", role="finance_admin")
    customer, _, charge_id = subscriber(webhook, plan("plan_pro", 5000, "Pro"))
    request = _refund(finance_admin, customer, charge_id, 1500, note="double billed")
    assert isinstance(request, RefundRequest) and request.status == "pending"
    assert not stripe.Refund.list(charge=charge_id).data
    assert finance_admin.has_perm(VIEW_REFUNDREQUEST, request)

    with pytest.raises(PermissionDenied):
        refunds.refund_request_approve(actor=finance_admin, request_id=request.pk)
    assert AuditEntry.objects.filter(action=codes.PERMISSION_DENIED, actor=finance_admin).exists()
    assert not stripe.Refund.list(charge=charge_id).data

    with django_capture_on_commit_callbacks(execute=True):
        action = refunds.refund_request_approve(actor=other_admin, request_id=request.pk, note="ok")
    again = refunds.refund_request_approve(actor=other_admin, request_id=request.pk)
    assert again.pk == action.pk
    assert [r.amount for r in stripe.Refund.list(charge=charge_id).data] == [1500]
    assert action.state == ActionState.SUBMITTED
    drain("sync")  # the decision email is an outbox row, sent by the sync queue
    assert mail.outbox and mail.outbox[-1].to == [finance_admin.email]
    assert "approved" in mail.outbox[-1].subject
    customer.refresh_from_db()
    assert customer.last_payment_status != "partially_refunded"  # not before the webhook

    event = confirm(webhook, "charge.refunded", stripe.Charge.retrieve(charge_id))
    action.refresh_from_db()
    customer.refresh_from_db()
    assert (action.state, action.confirmed_event_id) == (ActionState.CONFIRMED, event["id"])
    assert action.confirmed_at is not None
    assert customer.last_payment_status == "partially_refunded"
    assert AuditEntry.objects.filter(action=codes.BILLING_ACTION_CONFIRMED).count() == 1


def test_rejection_records_the_reason_and_tells_the_requester(
    stripe_api, webhook, support_agent, finance_admin, django_capture_on_commit_callbacks
):
    customer, _, charge_id = subscriber(webhook, plan("plan_pro", 5000, "Pro"))
    request = _refund(support_agent, customer, charge_id, 500)
    assert isinstance(request, RefundRequest)  # support agents only ever request
    with pytest.raises(PermissionDenied):
        refunds.refund_issue(
            actor=support_agent,
            customer_id=customer.pk,
            charge_id=charge_id,
            amount=500,
            reason_code="other",
            note="x",
            submission_key=uuid.uuid4(),
        )
    with django_capture_on_commit_callbacks(execute=True):
        refunds.refund_request_reject(
            actor=finance_admin, request_id=request.pk, reason="already credited"
        )
    request.refresh_from_db()
    assert (request.status, request.decision_note) == ("rejected", "already credited")
    drain("sync")  # the decision email is an outbox row, sent by the sync queue
    assert (
        mail.outbox[-1].to == [support_agent.email] and "already credited" in mail.outbox[-1].body
    )
    assert not stripe.Refund.list(charge=charge_id).data


def test_plan_change_and_cancel_at_period_end_change_local_state_only_after_the_webhook(
    stripe_api, webhook, finance_admin
):
    basic, pro = plan("plan_basic", 900, "Basic"), plan("plan_pro", 5000, "Pro")
    customer, sub, _ = subscriber(webhook, basic)
    assert customer.plan_id == basic.id

    change = subscriptions.subscription_change_plan(
        actor=finance_admin,
        customer_id=customer.pk,
        plan_id=pro.id,
        proration="none",
        note="upgrade asked by phone",
        submission_key=uuid.uuid4(),
    )
    assert change.state == ActionState.SUBMITTED
    assert stripe.Subscription.retrieve(sub.id)["items"].data[0].plan.id == pro.id
    customer.refresh_from_db()
    assert customer.plan_id == basic.id  # Stripe changed, we wait for its word

    confirm(webhook, "customer.subscription.updated", stripe.Subscription.retrieve(sub.id))
    customer.refresh_from_db()
    change.refresh_from_db()
    assert (customer.plan_id, change.state) == (pro.id, ActionState.CONFIRMED)

    cancel = subscriptions.subscription_cancel(
        actor=finance_admin,
        customer_id=customer.pk,
        at_period_end=True,
        note="customer leaving",
        submission_key=uuid.uuid4(),
    )
    customer.refresh_from_db()
    assert stripe.Subscription.retrieve(sub.id).cancel_at_period_end is True
    assert customer.cancel_at_period_end is False
    confirm(webhook, "customer.subscription.updated", stripe.Subscription.retrieve(sub.id))
    customer.refresh_from_db()
    cancel.refresh_from_db()
    assert (customer.cancel_at_period_end, cancel.state) == (True, ActionState.CONFIRMED)

    resume = subscriptions.subscription_resume(
        actor=finance_admin,
        customer_id=customer.pk,
        note="changed their mind",
        submission_key=uuid.uuid4(),
    )
    confirm(webhook, "customer.subscription.updated", stripe.Subscription.retrieve(sub.id))
    customer.refresh_from_db()
    resume.refresh_from_db()
    assert (customer.cancel_at_period_end, resume.state) == (False, ActionState.CONFIRMED)
    kinds = list(
        AuditEntry.objects.filter(action__startswith="billing.subscription.").values_list(
            "action", flat=True
        )
    )
    assert sorted(kinds) == sorted(
        [
            codes.BILLING_PLAN_CHANGED,
            codes.BILLING_SUBSCRIPTION_CANCELED,
            codes.BILLING_SUBSCRIPTION_RESUMED,
        ]
    )


def test_stripe_refusing_changes_nothing_and_is_audited(stripe_api, webhook, finance_admin):
    customer, _, charge_id = subscriber(webhook, plan("plan_pro", 5000, "Pro"))
    stripe_api.fail_next(
        "POST",
        "/v1/refunds",
        code="charge_already_refunded",
        message="Charge has already been refunded.",
    )
    with pytest.raises(StripeActionError) as refused:
        _refund(finance_admin, customer, charge_id, 1000)
    assert refused.value.user_message == (
        "Stripe refused it: Charge has already been refunded. Nothing was changed."
    )
    action = FinanceAction.objects.get()
    assert (action.state, action.error_message) == (ActionState.FAILED, refused.value.user_message)
    assert not stripe.Refund.list(charge=charge_id).data
    entry = AuditEntry.objects.get(action=codes.BILLING_REFUND_FAILED)
    assert entry.data["idempotency_key"] == action.idempotency_key
    assert entry.data["reason"] == "customer asked"
    customer.refresh_from_db()
    assert customer.last_payment_status != "partially_refunded"


def test_localstripe_bridge_confirms_what_localstripe_never_announces(
    stripe_api, webhook, finance_admin, settings
):
    import io

    from django.core.management import call_command

    basic, pro = plan("plan_basic", 900, "Basic"), plan("plan_pro", 5000, "Pro")
    customer, sub, charge_id = subscriber(webhook, basic)
    refund = _refund(finance_admin, customer, charge_id, 300)
    change = subscriptions.subscription_change_plan(
        actor=finance_admin,
        customer_id=customer.pk,
        plan_id=pro.id,
        proration="none",
        note="upgrade",
        submission_key=uuid.uuid4(),
    )
    out = io.StringIO()
    with webhook.on_commit(execute=True):
        call_command("localstripe_bridge", "--once", stdout=out)
    drain()
    assert "2 event(s) sent." in out.getvalue(), out.getvalue()
    refund.refresh_from_db()
    change.refresh_from_db()
    customer.refresh_from_db()
    assert (refund.state, change.state) == (ActionState.CONFIRMED, ActionState.CONFIRMED)
    assert (customer.plan_id, customer.last_payment_status) == (pro.id, "partially_refunded")
    again = io.StringIO()
    call_command("localstripe_bridge", "--once", stdout=again)
    assert "0 event(s) sent." in again.getvalue()  # nothing twice

    settings.STRIPE_API_BASE = "https://api.stripe.com"
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="only talks to a localstripe on this machine"):
        call_command("localstripe_bridge", "--once", stdout=io.StringIO())


def test_cancel_now_is_confirmed_by_the_deleted_webhook_localstripe_sends(
    localstripe_webhooks, webhook, owner
):
    customer, sub, _ = subscriber(webhook, plan("plan_pro", 5000, "Pro"))
    action = subscriptions.subscription_cancel(
        actor=owner,
        customer_id=customer.pk,
        at_period_end=False,
        note="fraud ring",
        submission_key=uuid.uuid4(),
    )
    customer.refresh_from_db()
    assert (action.state, customer.status) == (ActionState.SUBMITTED, "active")
    localstripe_webhooks.receive(["customer.subscription.deleted"])
    drain()
    action.refresh_from_db()
    customer.refresh_from_db()
    assert (action.state, customer.status) == (ActionState.CONFIRMED, "canceled")


def test_an_action_stripe_never_confirms_raises_one_alert_cleared_by_the_webhook(
    finance_admin, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from billing.confirmations import actions_alert_unconfirmed, actions_confirm_from_event
    from billing.models import StripeEvent
    from console.models import Alert
    from tests.factories import CustomerFactory

    customer = CustomerFactory(stripe_customer_id="cus_late")
    action = FinanceAction.objects.create(
        key=uuid.uuid4(),
        kind="refund",
        state=ActionState.SUBMITTED,
        customer=customer,
        requested_by=finance_admin,
        charge_id="ch_late",
        amount=100,
        currency="usd",
        idempotency_key="switchboard-refund-late",
        stripe_object_id="re_late",
        submitted_at=timezone.now() - timedelta(hours=2),
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert actions_alert_unconfirmed() == 1
        assert actions_alert_unconfirmed() == 0  # one alert, not one per sweep
    alert = Alert.objects.get(key=f"finance_unconfirmed:{action.pk}")
    assert "not confirmed by Stripe" in alert.title
    event = StripeEvent.objects.create(
        stripe_id="evt_late",
        type="charge.refunded",
        created=timezone.now(),
        payload={
            "data": {
                "object": {
                    "id": "ch_late",
                    "object": "charge",
                    "refunds": {"data": [{"id": "re_late"}]},
                }
            }
        },
    )
    assert actions_confirm_from_event(event) == [action.pk]
    alert.refresh_from_db()
    assert alert.state == "recovered"


def test_an_approval_that_died_before_its_action_is_finished_with_exactly_one_refund(
    stripe_api, webhook, settings, finance_admin, owner
):
    settings.REFUND_APPROVAL_THRESHOLD = 1000
    other_admin = StaffUserFactory(username="finance2@example.test", role="finance_admin")
    customer, _, charge_id = subscriber(webhook, plan("plan_pro", 5000, "Pro"))
    request = _refund(finance_admin, customer, charge_id, 1500)
    # The decision was committed, then the approving process died before the action row.
    RefundRequest.objects.filter(pk=request.pk).update(
        status="approved", decided_by=other_admin, decided_at=timezone.now()
    )

    with approval_running_elsewhere(request.pk):
        with pytest.raises(ValidationError) as busy:
            refunds.refund_request_approve(actor=owner, request_id=request.pk)
    assert "already being approved" in busy.value.messages[0]
    assert not stripe.Refund.list(charge=charge_id).data

    action = refunds.refund_request_approve(actor=owner, request_id=request.pk)
    again = refunds.refund_request_approve(actor=other_admin, request_id=request.pk)
    assert again.pk == action.pk
    assert (action.state, action.refund_request_id) == (ActionState.SUBMITTED, request.pk)
    assert [r.amount for r in stripe.Refund.list(charge=charge_id).data] == [1500]
    request.refresh_from_db()
    assert request.status == "approved"


def test_a_resend_is_audited_as_the_person_who_sent_it_again(stripe_api, webhook, finance_admin):
    other_admin = StaffUserFactory(username="finance2@example.test", role="finance_admin")
    customer, _, charge_id = subscriber(webhook, plan("plan_pro", 5000, "Pro"))
    action = _refund(finance_admin, customer, charge_id, 1000)
    FinanceAction.objects.filter(pk=action.pk).update(state=ActionState.REQUESTED)  # answer lost
    actions.action_resend(actor=other_admin, action_id=action.pk)
    sends = AuditEntry.objects.filter(action=codes.BILLING_REFUND_ISSUED).order_by("pk")
    assert [entry.actor for entry in sends] == [finance_admin, other_admin]
    assert sends.last().data["requested_by"] == finance_admin.get_username()
    assert [r.amount for r in stripe.Refund.list(charge=charge_id).data] == [1000]
