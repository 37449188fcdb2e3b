"""pytest fixtures for the Stripe pipeline (imported by tests/conftest.py)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import django_rq
import pytest
from django.core.management import call_command
from django.test import TestCase
from rq import SimpleWorker

from config.queueing import QUEUE_NAMES
from devkit.signing import encode, signature_header


@dataclass
class Webhook:
    url: str
    secret: str
    client: Any
    on_commit: Any = None

    def post(
        self,
        event: dict[str, Any] | bytes,
        *,
        secret: str | list[str] | None = None,
        timestamp: int | None = None,
        header: str | None = None,
        **extra: Any,
    ):
        body = event if isinstance(event, bytes) else encode(event)
        if header is None:
            header = signature_header(body, secret or self.secret, timestamp)
        headers = {"HTTP_STRIPE_SIGNATURE": header} if header else {}
        if self.on_commit is None:  # a transactional test: commits are real
            return self.client.post(
                self.url, data=body, content_type="application/json", **headers, **extra
            )
        # Inside a test transaction, run on-commit callbacks as the real commit would.
        with self.on_commit(execute=True):
            return self.client.post(
                self.url, data=body, content_type="application/json", **headers, **extra
            )


@pytest.fixture
def webhook(request, db, client, settings, django_capture_on_commit_callbacks) -> Webhook:
    out = io.StringIO()
    call_command("stripe_webhook_setup", "--base-url", "http://testserver", stdout=out)
    url = out.getvalue().strip().splitlines()[-1]
    transactional = "transactional_db" in request.fixturenames or any(
        m.kwargs.get("transaction") for m in request.node.iter_markers("django_db")
    )
    return Webhook(
        url=url.removeprefix("http://testserver"),
        secret=settings.STRIPE_WEBHOOK_SECRET,
        client=client,
        on_commit=None if transactional else django_capture_on_commit_callbacks,
    )


def drain(*queues: str) -> None:
    """Run a real worker over the queues (default: all, in priority order) until they are
    empty (no sleeps).

    The worker runs in the test's process and transaction; on-commit callbacks its jobs
    register (follow-up jobs, alerts) run as they would on a real commit.
    """
    worker = django_rq.get_worker(*(queues or QUEUE_NAMES), worker_class=SimpleWorker)
    with TestCase.captureOnCommitCallbacks(execute=True):
        worker.work(burst=True)
