"""pytest fixtures for the vendor fakes and a helper that drives the pipeline's and the
outbox's workers until there is nothing left to do (burst mode, no sleeps)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import django_rq
import pytest

from config.queueing import QUEUE_NAMES
from delivery.models import OutboxMessage
from delivery.outbox import outbox_sweep
from devkit.fakes.hubspot import FakeHubSpot
from devkit.fakes.slack import FakeSlack
from devkit.fakes.zendesk import FakeZendesk
from tests.stripe_support.fixtures import drain

FAST_LIMITS = {"hubspot": 1000.0, "hubspot_search": 1000.0, "zendesk": 1000.0, "slack": 1000.0}
QUEUES = ("billing", "disputes", "retention", "human_review")


@pytest.fixture
def sync_settings(settings):
    """Fast limits and a short HTTP timeout; tests that measure the limiter lower them."""
    settings.SYNC_RATE_LIMITS = dict(FAST_LIMITS)
    settings.SYNC_HTTP_TIMEOUT_SECONDS = 0.5
    return settings


@pytest.fixture
def hubspot(sync_settings):
    fake = FakeHubSpot().start()
    sync_settings.HUBSPOT_BASE_URL = fake.url
    sync_settings.HUBSPOT_TOKEN = fake.token
    yield fake
    fake.stop()


@pytest.fixture
def zendesk(sync_settings):
    fake = FakeZendesk(email="agent@example.test", token="zendesk-test-token").start()
    # Set up as README says: one group per queue, each with an agent in it.
    agent = fake.add_user(name="Ada Agent", email="ada.agent@helpdesk.example.test", role="agent")
    sync_settings.ZENDESK_GROUP_IDS = {
        queue: fake.add_group(queue, members=(agent["id"],)) for queue in QUEUES
    }
    sync_settings.ZENDESK_SOLVE_ASSIGNEE_ID = 0
    sync_settings.ZENDESK_BASE_URL = fake.url
    sync_settings.ZENDESK_EMAIL = "agent@example.test"
    sync_settings.ZENDESK_TOKEN = "zendesk-test-token"
    yield fake
    fake.stop()


@pytest.fixture
def slack(sync_settings):
    fake = FakeSlack().start()
    sync_settings.SLACK_WEBHOOK_URL = fake.url + "/services/T000/B000/XXXX"
    yield fake
    fake.stop()


def run_all(*, rounds: int = 20) -> None:
    """Drain every queue until all are empty: jobs enqueued by jobs (an event's follow-up
    runs, a handler run's outbox rows, an alert's Slack row) are sent on the commit that
    ends each burst, so a few rounds are needed."""
    queues = [django_rq.get_queue(name) for name in QUEUE_NAMES]
    for _ in range(rounds):
        if not any(queue.count for queue in queues):
            return
        drain()
    raise AssertionError("queues did not empty")


def advance(seconds: float) -> None:
    """The clock moving on for the outbox: waiting rows fall due ``seconds`` earlier and
    were written that much earlier (the retry horizon counts from the write)."""
    delta = timedelta(seconds=seconds)
    for row in OutboxMessage.objects.all():
        OutboxMessage.objects.filter(pk=row.pk).update(
            next_attempt_at=row.next_attempt_at - delta,
            created_at=row.created_at - delta,
            updated_at=row.updated_at - delta,
        )


def sweep_and_run() -> dict[str, int]:
    counts = outbox_sweep()
    run_all()
    return counts


def until(
    condition: Callable[[], bool],
    *,
    bound: float = 10.0,
    step: Callable[[], object] = sweep_and_run,
) -> None:
    """Poll (bounded): run ``step`` until ``condition`` holds — for waits the vendor
    imposes (a 1 s Retry-After), not for work."""
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        step()
        time.sleep(0.05)
