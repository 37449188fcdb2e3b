"""The admin around the console (index order, labels, View site, favicon), the "needs
you" strip, and the dashboard chart's time axis."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.models import RefundRequest
from console import charts
from console.dashboard import dashboard
from console.models import Alert
from tests.console_support import outbox, stripe_event
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _index(client, user) -> str:
    client.force_login(user)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    return response.content.decode()


def test_index_puts_everyday_work_first_with_human_labels(client, owner):
    page = _index(client, owner)
    captions = re.findall(r"<caption>\s*<a[^>]*>([^<]+)</a>", page)
    assert captions[0] == "Everyday work", captions
    first = page.split("<caption>")[1]
    order = [
        first.index(name)
        for name in (
            "Customers",
            "Find a customer",
            "Refund requests",
            "Tickets",
            "Operations dashboard",
        )
    ]
    assert order == sorted(order)
    assert "Stripe mirror (read-only)" in captions and "Job queues" in captions
    for raw in ("Django_Rq", "Djstripe", "Django_rq"):
        assert raw not in page
    assert f'href="{reverse("console_dashboard")}">View site' in page.replace("\n", "")
    assert 'rel="icon" href="/static/console/favicon.svg"' in page


def test_support_agent_index_has_no_refund_approvals_nor_alerts(client, support_agent):
    page = _index(client, support_agent)
    assert 'id="need-refund-requests"' not in page and 'id="need-open-alerts"' not in page
    assert 'id="need-needs-review"' in page
    assert "Stripe mirror" not in page  # dj-stripe's mirror is finance-only


def test_needs_you_counts_link_to_the_rows(client, owner, finance_admin, support_agent):
    RefundRequest.objects.create(
        customer=CustomerFactory(stripe_customer_id="cus_R"),
        requested_by=support_agent,
        charge_id="ch_R",
        amount=1500,
        currency="usd",
        charge_amount=5000,
        reason_code="service_issue",
        note="outage",
        key=uuid.uuid4(),
    )
    outbox(customer=None, channel="crm", state="dead")
    Alert.objects.create(key="k", title="Webhook failures")
    review = CustomerFactory(match_state="matched_by_email", email="review@example.test")
    CustomerFactory(email="fine@example.test")
    page = _index(client, finance_admin)
    strip = page[page.index('id="needs-you"') : page.index("</ul>", page.index('id="needs-you"'))]
    assert re.search(r'sb-count">1</span> refund requests waiting', strip)
    assert re.search(r'sb-count">1</span> dead deliveries', strip)
    assert re.search(r'sb-count">1</span> open alerts', strip)
    assert re.search(r'sb-count">1</span> customers needing review', strip)
    link = re.search(r'id="need-needs-review"><a href="([^"]+)"', strip).group(1)
    listed = client.get(link.replace("&amp;", "&")).content.decode()
    assert review.email in listed and "fine@example.test" not in listed
    # the same strip heads the dashboard
    assert 'id="needs-you"' in client.get(reverse("console_dashboard")).content.decode()


def test_dashboard_series_has_every_bucket_and_one_busy_bucket_draws_a_bar(owner):
    now = timezone.now()
    stripe_event(received_at=now - timedelta(minutes=1))
    for window, buckets in (("1h", 12), ("24h", 24), ("7d", 168)):
        board = dashboard(user=owner, window=window, now=now)
        assert len(board.series) == buckets, window
        assert sum(d for _, d, _ in board.series) == 1
    svg = charts.deliveries_chart(dashboard(user=owner, window="24h", now=now).series, title="t")
    heights = [float(h) for h in re.findall(r'height="([\d.]+)" class="rect', svg)]
    assert len([h for h in heights if h > 0]) == 1  # one visible bar, on a 24-hour axis
