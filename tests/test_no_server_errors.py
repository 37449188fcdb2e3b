"""No 5xx on any input: signed malformed webhooks, crafted API paths, every URL as every role.

The property tests post through Django's test client in the test's process (no server, no
sleeps). ``FUZZ_EXAMPLES`` sets the number of webhook bodies (default 2,000; ``make proof``
runs 20,000) and API paths (a quarter of it, at least 500).
"""

from __future__ import annotations

import json
import os
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.urls.resolvers import RegexPattern, RoutePattern, _route_to_regex
from django.utils.regex_helper import normalize
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.api_tokens import api_token_create
from devkit.signing import signature_header
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

WEBHOOK_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "2000"))
API_EXAMPLES = max(500, WEBHOOK_EXAMPLES // 4)


def fuzz(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,  # no .hypothesis directory in the tree
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
        ],
    )


# Any text, lone surrogates, NUL and other control characters included.
any_text = st.text(st.characters(codec=None, categories=None), max_size=40)
any_int = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([0, -1, 2**31, 2**63, 10**30, 253402300800]),
)
json_scalar = st.one_of(st.none(), st.booleans(), any_int, st.floats(allow_nan=False), any_text)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(any_text, inner, max_size=4)
    ),
    max_leaves=12,
)


def _envelope() -> dict[str, Any]:
    return {
        "id": "evt_" + uuid.uuid4().hex,
        "object": "event",
        "type": "invoice.payment_failed",
        "created": 1_700_000_000,
        "livemode": False,
        "api_version": "2024-06-20",
        "data": {
            "object": {"id": "in_1", "object": "invoice", "customer": "cus_fuzz"},
        },
    }


@st.composite
def mutated_envelope(draw: Any) -> str:
    """A real envelope with some of the fields the receiver reads replaced by anything."""
    event = _envelope()
    for path in draw(
        st.lists(
            st.sampled_from(
                [
                    ("id",),
                    ("type",),
                    ("created",),
                    ("livemode",),
                    ("api_version",),
                    ("data",),
                    ("data", "object"),
                    ("data", "object", "id"),
                    ("data", "object", "object"),
                    ("data", "object", "customer"),
                ]
            ),
            min_size=1,
            max_size=4,
        )
    ):
        target = event
        for key in path[:-1]:
            target = target.get(key) if isinstance(target, dict) else None
        if isinstance(target, dict):
            target[path[-1]] = draw(st.one_of(json_value, any_int, any_text))
    return json.dumps(event)


@st.composite
def deep_nesting(draw: Any) -> str:
    # Python's JSON parser gives out near 1,000 levels (RecursionError); PostgreSQL's too.
    depth = draw(st.integers(min_value=1, max_value=3_000))
    inner = draw(st.sampled_from(["", "1", '"evt_x"', "{}"]))
    if draw(st.booleans()):
        return "[" * depth + inner + "]" * depth
    return '{"a":' * depth + (inner or "1") + "}" * depth


webhook_body = st.one_of(
    mutated_envelope(),
    mutated_envelope(),
    json_value.map(json.dumps),
    deep_nesting(),
    any_text,
    st.binary(max_size=200).map(lambda b: b.decode("utf-8", "replace")),
)


# Transactional, as in production (autocommit): a statement PostgreSQL refuses must not
# poison the test's own transaction for every later example.
@pytest.mark.django_db(transaction=True)
def test_signed_malformed_webhooks_never_answer_5xx(webhook):
    statuses: dict[int, int] = {}

    @fuzz(WEBHOOK_EXAMPLES)
    @given(body=webhook_body)
    def post(body: str) -> None:
        raw = body.encode("utf-8", "surrogatepass")
        response = webhook.post(raw, header=signature_header(raw, webhook.secret))
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (response.status_code, body[:300])

    post()
    print(f"webhook fuzz: {sum(statuses.values())} signed bodies, statuses {statuses}")
    assert sum(statuses.values()) >= WEBHOOK_EXAMPLES


api_ref = st.one_of(
    any_text.map(lambda t: quote(t.encode("utf-8", "surrogatepass"), safe="")),
    st.binary(max_size=60).map(lambda b: quote(b, safe="")),
    st.text(st.characters(codec="ascii"), max_size=60).map(lambda t: quote(t, safe="/%")),
    st.sampled_from(["abc%00def", "%00", "%ed%a0%80", "%ff", "..%2F..", "cus_1%0d%0a", "x" * 300]),
)


def test_crafted_api_paths_never_answer_5xx(client, owner):
    token = api_token_create(actor=owner, name="fuzz")[1]
    CustomerFactory(stripe_customer_id="cus_fuzz")
    headers = st.sampled_from(
        [f"Bearer {token}", f"Bearer {token}", "Bearer sbk_bogus", "", "Basic x", "Bearer "]
    )
    statuses: dict[int, int] = {}

    @fuzz(API_EXAMPLES)
    @given(ref=api_ref, auth=headers, suffix=st.sampled_from(["/state", "/state/", "", "/x"]))
    def get(ref: str, auth: str, suffix: str) -> None:
        response = client.get(f"/api/v1/customers/{ref}{suffix}", HTTP_AUTHORIZATION=auth)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (response.status_code, ref)

    get()
    print(f"api fuzz: {sum(statuses.values())} paths, statuses {statuses}")
    assert sum(statuses.values()) >= API_EXAMPLES


# --- every URL pattern as every role ------------------------------------------------------


def _patterns(resolver: URLResolver, prefix: str = "") -> list[str]:
    """The full regex of every URL pattern, includes walked."""
    found = []
    for entry in resolver.url_patterns:
        pattern = entry.pattern
        if isinstance(pattern, RoutePattern):
            regex = _route_to_regex(str(pattern), isinstance(entry, URLPattern))[0]
        else:
            assert isinstance(pattern, RegexPattern)
            regex = pattern._regex
        regex = regex.removeprefix("^")
        if isinstance(entry, URLResolver):
            found += _patterns(entry, prefix + regex.removesuffix("$"))
        else:
            found.append(prefix + regex)
    return found


SAMPLE_VALUES = ["1", "0", "00000000-0000-0000-0000-000000000001", "x", "cus_1"]


def _fill(regex: str) -> str | None:
    """One concrete path for the pattern: each parameter gets the first sample value that
    makes the whole path resolve; None when no sample fits (a pattern we cannot fill)."""
    for template, params in normalize(regex):
        choice: dict[str, str] = {}
        for param in params:
            for value in SAMPLE_VALUES:
                trial = {**{p: SAMPLE_VALUES[0] for p in params}, **choice, param: value}
                try:
                    resolve("/" + template % trial)
                except Resolver404:
                    continue
                choice[param] = value
                break
            else:
                return None
        path = "/" + template % {p: choice.get(p, "1") for p in params}
        try:
            resolve(path)
        except Resolver404:
            continue
        return path
    return None


def all_url_paths() -> list[str]:
    return sorted({p for p in (_fill(r) for r in _patterns(get_resolver())) if p})


def test_every_url_answers_without_5xx_for_anonymous_and_every_role(staff_by_role):
    paths = all_url_paths()
    assert len(paths) > 300  # the admin, dj-stripe's mirror, django-rq, the console, the API
    failures = []
    clients = {"anonymous": Client()}
    for role, user in staff_by_role.items():
        clients[role] = Client()
        clients[role].force_login(user)
    for role, client in clients.items():
        for path in paths:
            response = client.get(path)
            if response.status_code >= 500:
                failures.append((role, path, response.status_code))
    print(f"all-URLs test: {len(paths)} paths x {len(clients)} roles")
    assert failures == []


@pytest.mark.parametrize(
    "path",
    [
        "/admin/django_rq/dashboard/1/change/",
        "/admin/django_rq/dashboard/1/delete/",
        "/admin/django_rq/dashboard/1/history/",
        "/admin/django_rq/dashboard/schedulers/0/",
        "/admin/django_rq/dashboard/queues/99/",
    ],
)
def test_job_dashboard_object_urls_are_refused_or_absent_never_500(path, client, staff_by_role):
    for role, user in staff_by_role.items():
        client.force_login(user)
        status = client.get(path).status_code
        # Owners hold the permission: the page does not exist. Others: refused first.
        assert status in ({302, 404} if role == "owner" else {302, 403, 404}), (role, status)


def test_view_on_site_answers_for_every_content_type(client, owner):
    """/admin/r/<type>/<id>/ for every model, django-rq's table-less one included (its
    content type id depends on migration order, so the all-URLs walk cannot pin it)."""
    from django.contrib.contenttypes.models import ContentType

    client.force_login(owner)
    statuses = {
        ct.model: client.get(f"/admin/r/{ct.pk}/1/").status_code for ct in ContentType.objects.all()
    }
    assert statuses["dashboard"] == 404
    assert [m for m, status in statuses.items() if status >= 500] == []
