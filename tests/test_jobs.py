"""Jobs are sent to Redis only after the transaction that justifies them commits."""

from __future__ import annotations

import django_rq
import pytest
from django.db import transaction
from rq import SimpleWorker

from config.queueing import enqueue_on_commit
from tests.factories import CustomerFactory
from tests.jobs_support import leave_mark_job, marks


def run_worker_burst(*queues: str) -> None:
    """Drive a real worker over the queues until they are empty (no sleeps)."""
    worker = django_rq.get_worker(*queues, worker_class=SimpleWorker)
    worker.work(burst=True)


@pytest.mark.django_db(transaction=True)
def test_job_enqueued_in_a_rolled_back_transaction_never_runs():
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            CustomerFactory()
            enqueue_on_commit("default", leave_mark_job, "rolled-back")
            raise RuntimeError("something failed after the job was registered")
    assert django_rq.get_queue("default").count == 0
    run_worker_burst("default")
    assert marks() == []


@pytest.mark.django_db(transaction=True)
def test_job_enqueued_in_a_committed_transaction_runs_after_commit():
    with transaction.atomic():
        CustomerFactory()
        enqueue_on_commit("sync", leave_mark_job, "committed")
        # Not in Redis yet: a worker must never see work whose rows are uncommitted.
        assert django_rq.get_queue("sync").count == 0
    assert django_rq.get_queue("sync").count == 1
    run_worker_burst("sync")
    assert marks() == ["committed"]


@pytest.mark.django_db(transaction=True)
def test_redis_down_after_commit_does_not_fail_the_caller(settings, caplog):
    queues = {name: dict(cfg) for name, cfg in settings.RQ_QUEUES.items()}
    for cfg in queues.values():
        cfg["URL"] = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    settings.RQ_QUEUES = queues
    with transaction.atomic():
        customer = CustomerFactory()
        enqueue_on_commit("webhooks", leave_mark_job, "lost?")
    assert customer.pk  # the committed work stands
    assert "the sweeper will retry" in caplog.text


def test_unknown_queue_is_refused():
    with pytest.raises(ValueError, match="unknown queue"):
        enqueue_on_commit("emails", leave_mark_job, "x")


def test_three_queues_are_configured(settings):
    assert set(settings.RQ_QUEUES) == {"webhooks", "sync", "default"}
