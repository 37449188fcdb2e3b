"""HubSpot and Zendesk as they really answer (devkit/fakes/ follow their documented
behaviour): plan limits and the search limit, 429s without Retry-After, lifecycle stages
that only move forward, setup errors, email conflicts, groups, solving without an
assignee, requesters who are agents, email changes and idempotent creates."""

from __future__ import annotations

import pytest
from django.core import mail

from console.alert_rules import alerts_evaluate
from console.models import Alert, AlertState
from customers.models import MatchState
from delivery.models import OutboxMessage, OutboxState
from devkit import stripe_events as events
from devkit.fakes.hubspot import SEARCH, FakeHubSpot
from support.models import Ticket, TicketStatus
from support.rules import TICKET_RULES
from support.services import ticket_open
from tests.factories import CustomerFactory
from tests.fakes.fixtures import advance, run_all, sweep_and_run, until
from tests.test_downstream_journeys import World
from tests.test_downstream_outbox import write  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db


def rows(state: str | None = None, channel: str = ""):
    qs = OutboxMessage.objects.all()
    if channel:
        qs = qs.filter(channel=channel)
    return qs.filter(state=state) if state else qs


def the_contact(hubspot):
    assert len(hubspot.contacts) == 1, hubspot.contacts
    return next(iter(hubspot.contacts.values()))


# --- rate limits ------------------------------------------------------------------------


@pytest.fixture
def starter_hubspot(sync_settings):
    """A HubSpot Starter account (100 requests per 10 s, search 4/s) and Switchboard's
    default limits for it."""
    fake = FakeHubSpot(plan="starter").start()
    sync_settings.HUBSPOT_BASE_URL, sync_settings.HUBSPOT_TOKEN = fake.url, fake.token
    sync_settings.SYNC_RATE_LIMITS = {
        **sync_settings.SYNC_RATE_LIMITS,
        "hubspot": sync_settings.HUBSPOT_REQUESTS_PER_10_SECONDS / 10,
        "hubspot_search": sync_settings.HUBSPOT_SEARCH_PER_SECOND,
    }
    yield fake
    fake.stop()


def test_new_contacts_never_exceed_hubspots_search_limit(starter_hubspot, write):  # noqa: F811
    customers = [CustomerFactory(status="active") for _ in range(10)]
    for customer in customers:
        write(customer)
    run_all()
    until(lambda: rows(OutboxState.DELIVERED).count() == 10, bound=20)
    assert len(starter_hubspot.contacts) == 10
    assert not starter_hubspot.calls(status=429)
    assert starter_hubspot.peak(1.0, path=SEARCH) <= 4
    assert starter_hubspot.peak(10.0) <= 100


def test_a_429_without_retry_after_holds_every_hubspot_request(hubspot, write):  # noqa: F811
    # HubSpot's search limit answers 429 with a policy name and no Retry-After.
    hubspot.fail(
        429,
        times=1,
        path=SEARCH,
        body={
            "status": "error",
            "message": "You have reached your secondly limit.",
            "errorType": "RATE_LIMIT",
            "policyName": "SECONDLY",
        },
    )
    for customer in [CustomerFactory(status="active") for _ in range(3)]:
        write(customer)
    run_all()
    until(lambda: rows(OutboxState.DELIVERED).count() == 3, bound=15)
    throttled = hubspot.calls(status=429)
    assert len(throttled) == 1
    after = [r.at for r in hubspot.requests if r.at > throttled[0].at]
    # Nothing at all (search or not) went out within the policy's 1 s window.
    assert after and after[0] - throttled[0].at >= 0.95
    assert len(hubspot.contacts) == 3


def test_a_ten_secondly_429_holds_the_row_for_the_window(hubspot, write):  # noqa: F811
    hubspot.fail(
        429,
        times=1,
        body={"status": "error", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"},
    )
    row = write(CustomerFactory(status="active"))
    run_all()
    row.refresh_from_db()
    assert row.state == OutboxState.FAILED
    assert (row.next_attempt_at - row.updated_at).total_seconds() >= 9.5
    assert len(hubspot.requests) == 1


# --- HubSpot ----------------------------------------------------------------------------


def test_a_churned_customer_back_on_trial_moves_back_to_opportunity(webhook, hubspot):
    world = World(webhook)
    world.subscribe()
    run_all()
    world.send("customer.subscription.deleted", world.sub("canceled"))
    run_all()
    assert the_contact(hubspot)["properties"]["lifecyclestage"] == "customer"
    assert the_contact(hubspot)["properties"]["switchboard_tags"] == "churned"
    world.sub_id = events.new_id("sub")
    world.send("customer.subscription.created", world.sub("trialing"))
    run_all()
    contact = the_contact(hubspot)
    assert contact["properties"]["lifecyclestage"] == "opportunity"
    assert contact["properties"]["switchboard_tags"] == "trial"


def test_a_stage_a_person_chose_is_not_pulled_back(webhook, hubspot):
    world = World(webhook)
    world.send("customer.created", world.cus)
    run_all()
    contact = the_contact(hubspot)
    assert contact["properties"]["lifecyclestage"] == "lead"
    contact["properties"]["lifecyclestage"] = "salesqualifiedlead"  # sales moved it on
    world.send("customer.updated", {**world.cus, "name": "Lin Park-Hill"})
    run_all()
    assert the_contact(hubspot)["properties"]["lifecyclestage"] == "salesqualifiedlead"


def test_updates_leave_what_people_edit_in_the_crm_alone(webhook, hubspot):
    world = World(webhook)
    world.subscribe()
    run_all()
    contact = the_contact(hubspot)
    contact["properties"]["firstname"] = "Linnea"  # edited by a person in HubSpot
    world.send("invoice.payment_failed", world.failing_invoice())
    world.send("customer.subscription.updated", world.sub("past_due"))
    run_all()
    contact = the_contact(hubspot)
    assert contact["properties"]["firstname"] == "Linnea"
    assert contact["properties"]["switchboard_tags"] == "payment_failed"
    assert not [r for r in hubspot.calls("PATCH") if "email" in r.body["properties"]]


def test_an_email_changed_in_stripe_reaches_the_contact(webhook, hubspot):
    world = World(webhook)
    world.subscribe()
    run_all()
    world.send("customer.updated", {**world.cus, "email": "lin.new@example.test"})
    run_all()
    assert the_contact(hubspot)["properties"]["email"] == "lin.new@example.test"


def test_an_email_another_contact_owns_marks_the_customer_for_review_not_dead(webhook, hubspot):
    world = World(webhook)
    world.subscribe()
    run_all()
    ours = the_contact(hubspot)
    other = hubspot.add_contact({"email": "lin.new@example.test", "firstname": "Someone"})
    world.send("customer.updated", {**world.cus, "email": "lin.new@example.test"})
    world.send("customer.subscription.updated", world.sub("past_due"))
    run_all()
    customer = world.customer()
    assert customer.match_state == MatchState.CONFLICT
    assert "lin.new@example.test" in customer.review_reason
    assert other["id"] in customer.review_reason
    assert not rows(OutboxState.DEAD).exists()
    assert hubspot.contacts[ours["id"]]["properties"]["email"] == "lin@example.test"
    assert hubspot.contacts[ours["id"]]["properties"]["switchboard_tags"] == "payment_failed"
    assert hubspot.contacts[other["id"]]["properties"] == other["properties"]


def test_a_missing_property_pauses_the_crm_with_one_alert_saying_what_to_create(
    hubspot,
    write,  # noqa: F811
    settings,
):
    del hubspot.properties["switchboard_plan"]
    customers = [CustomerFactory(status="active", plan_name="Pro") for _ in range(8)]
    for customer in customers:
        write(customer)
    run_all()
    assert rows(OutboxState.PAUSED, "crm").count() == 8
    assert not rows(OutboxState.DEAD).exists()
    alert = Alert.objects.get(key="sync:crm:paused")
    assert "create the contact property 'switchboard_plan'" in alert.title
    assert "credentials" not in alert.title
    alerts_evaluate()  # the scheduler's rules see the same pause: still one alert
    assert Alert.objects.filter(title__contains="paused").count() == 1
    paused_mail = [m for m in mail.outbox if "paused" in m.subject]
    assert len(paused_mail) == 1 and "switchboard_plan" in paused_mail[0].subject
    assert len(hubspot.requests) <= 2  # one search and the refused create, then parked

    hubspot.properties["switchboard_plan"] = None  # someone created it
    advance(settings.SYNC_PAUSE_PROBE_SECONDS + 1)
    sweep_and_run()
    assert rows(OutboxState.DELIVERED, "crm").count() == 8
    assert len(hubspot.contacts) == 8
    assert Alert.objects.get(key="sync:crm:paused").state == AlertState.RECOVERED


def test_a_missing_tag_option_names_the_option_to_add(hubspot, write):  # noqa: F811
    hubspot.properties["switchboard_tags"] = ("trial",)  # "paying" was never added
    write(CustomerFactory(status="active"))
    run_all()
    assert rows(OutboxState.PAUSED).count() == 1
    title = Alert.objects.get(key="sync:crm:paused").title
    assert "add the option 'paying' to the contact property 'switchboard_tags'" in title


# --- Zendesk ----------------------------------------------------------------------------


def open_ticket(queue: str, customer=None, key: str = "") -> Ticket:
    rule = next(r for r in TICKET_RULES if r.queue == queue)
    ticket, _ = ticket_open(
        customer=customer or CustomerFactory(status="past_due"),
        rule=rule,
        situation_key=key or f"{queue}:test",
        subject=f"{queue} ticket",
        body="-",
    )
    return ticket


def test_tickets_land_in_their_queues_group(
    webhook, hubspot, zendesk, settings, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        billing = open_ticket("billing", key="payment_failed:in_1")
        dispute = open_ticket("disputes", key="dispute:dp_1")
    run_all()
    groups = settings.ZENDESK_GROUP_IDS
    billing.refresh_from_db()
    dispute.refresh_from_db()
    assert zendesk.tickets[int(billing.external_id)]["group_id"] == groups["billing"]
    assert zendesk.tickets[int(dispute.external_id)]["group_id"] == groups["disputes"]


def test_a_private_queue_without_a_group_is_never_opened_for_everyone(
    zendesk, settings, django_capture_on_commit_callbacks
):
    settings.ZENDESK_GROUP_IDS = {"billing": settings.ZENDESK_GROUP_IDS["billing"]}
    with django_capture_on_commit_callbacks(execute=True):
        open_ticket("disputes", key="dispute:dp_2")
        open_ticket("billing", key="payment_failed:in_2")
    run_all()
    dead = rows(OutboxState.DEAD, "helpdesk").get()
    assert "ZENDESK_GROUP_IDS" in dead.outcome
    assert [t["external_id"] for t in zendesk.tickets.values()] == ["payment_failed:in_2"]
    assert Alert.objects.filter(key=f"sync:helpdesk:dead:{dead.pk}").exists()


@pytest.mark.parametrize("configured", [True, False])
def test_solving_an_unassigned_ticket_assigns_it_first(
    configured, zendesk, settings, django_capture_on_commit_callbacks
):
    from support.services import ticket_solve

    lead = zendesk.add_user(name="Lead Agent", email="lead@helpdesk.example.test", role="agent")
    if configured:
        settings.ZENDESK_SOLVE_ASSIGNEE_ID = lead["id"]
    with django_capture_on_commit_callbacks(execute=True):
        ticket = open_ticket("billing", key="payment_failed:in_3")
    run_all()
    ticket.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        ticket_solve(situation_key=ticket.situation_key, note="Invoice in_3 was paid.")
    run_all()
    remote = zendesk.tickets[int(ticket.external_id)]
    assert remote["status"] == "solved"
    group_agent = next(m["user_id"] for m in zendesk.memberships if m["default"])
    assert remote["assignee_id"] == (lead["id"] if configured else group_agent)
    assert rows(OutboxState.DELIVERED, "helpdesk").count() == 2
    assert Ticket.objects.get().status == TicketStatus.SOLVED


def test_a_customer_sharing_an_agents_email_never_demotes_the_agent(
    zendesk, django_capture_on_commit_callbacks
):
    agent = zendesk.add_user(name="Sam Agent", email="sam@example.test", role="agent")
    customer = CustomerFactory(status="past_due", email="sam@example.test", name="Sam Buyer")
    with django_capture_on_commit_callbacks(execute=True):
        ticket = open_ticket("billing", customer=customer, key="payment_failed:in_4")
    run_all()
    ticket.refresh_from_db()
    assert zendesk.tickets[int(ticket.external_id)]["requester_id"] == agent["id"]
    assert (zendesk.users[agent["id"]]["role"], zendesk.users[agent["id"]]["name"]) == (
        "agent",
        "Sam Agent",
    )


def test_a_known_requester_is_found_by_external_id_not_recreated(
    zendesk, django_capture_on_commit_callbacks
):
    customer = CustomerFactory(status="past_due")
    known = zendesk.add_user(name="Known", email=customer.email, external_id=str(customer.pk))
    with django_capture_on_commit_callbacks(execute=True):
        ticket = open_ticket("billing", customer=customer, key="payment_failed:in_5")
    run_all()
    ticket.refresh_from_db()
    customer.refresh_from_db()
    assert zendesk.tickets[int(ticket.external_id)]["requester_id"] == known["id"]
    assert customer.helpdesk_user_id == str(known["id"])
    assert len([u for u in zendesk.users.values() if u["role"] == "end-user"]) == 1


def test_an_email_changed_in_stripe_reaches_the_helpdesk_user(webhook, hubspot, zendesk):
    world = World(webhook)
    world.subscribe()
    world.send("invoice.payment_failed", world.failing_invoice())
    run_all()
    user = zendesk.users[int(world.customer().helpdesk_user_id)]
    assert user["email"] == "lin@example.test"
    world.send("customer.updated", {**world.cus, "email": "lin.new@example.test"})
    run_all()
    assert user["email"] == "lin.new@example.test"
    assert [i["value"] for i in user["identities"] if i["primary"]] == ["lin.new@example.test"]
    assert len(zendesk.users) == 2  # the agent of the fixture and Lin: nobody new


def test_a_lost_create_answer_is_replayed_by_its_idempotency_key(
    zendesk, django_capture_on_commit_callbacks, settings
):
    # Zendesk creates the ticket, the answer is lost, and its list does not show the
    # new ticket yet when the retry looks: the Idempotency-Key still makes it one ticket.
    zendesk.hang(1.0, process=True, path="/api/v2/tickets.json", method="POST")
    zendesk.list_lag = True
    with django_capture_on_commit_callbacks(execute=True):
        ticket = open_ticket("billing", key="payment_failed:in_6")
    run_all()
    assert rows(OutboxState.FAILED, "helpdesk").count() == 1
    advance(settings.SYNC_BACKOFF_MAX_SECONDS)
    sweep_and_run()
    ticket.refresh_from_db()
    assert rows(OutboxState.DELIVERED, "helpdesk").count() == 1
    assert len(zendesk.tickets) == 1
    assert ticket.external_id == str(next(iter(zendesk.tickets)))
