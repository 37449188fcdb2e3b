"""The production web tier: static files from WhiteNoise, a 503 page when PostgreSQL is down."""

from __future__ import annotations

import contextlib

import pytest
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.management import call_command
from django.db import connections
from django.test import Client

from tests.fault_support import free_port


@contextlib.contextmanager
def database_down():
    """Point the default connection at a closed port (the shared PostgreSQL is untouched)."""
    conn = connections["default"]
    conn.close()
    port = conn.settings_dict["PORT"]
    conn.settings_dict["PORT"] = str(free_port())
    try:
        yield
    finally:
        conn.close()
        conn.settings_dict["PORT"] = port


@pytest.mark.django_db(transaction=True)
def test_database_down_is_a_503_page_not_a_stack_trace(owner, password):
    signed_in = Client(raise_request_exception=False)
    signed_in.force_login(owner)
    client = Client(raise_request_exception=False)
    with database_down():
        login = client.post("/admin/login/", {"username": owner.username, "password": password})
        console = signed_in.get("/admin/")
        ready = client.get("/readyz")
        alive = client.get("/healthz")
    for response in (login, console):
        assert response.status_code == 503
        assert response["Retry-After"] == "30"
        text = response.content.decode()
        assert "cannot reach its database" in text and "Traceback" not in text
    assert ready.status_code == 503 and ready.json()["database"]["ok"] is False
    assert alive.status_code == 200
    # And back: the same requests work again.
    assert signed_in.get("/admin/").status_code == 200
    assert (
        client.post("/admin/login/", {"username": owner.username, "password": password}).status_code
        == 302
    )


def test_static_files_are_served_hashed_and_compressed_without_debug(settings, tmp_path):
    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    call_command("collectstatic", "--no-input", "-v", "0")
    url = staticfiles_storage.url("admin/css/base.css")
    assert url != "/static/admin/css/base.css"  # a content-hashed name, cacheable forever
    client = Client()  # a new handler: WhiteNoise reads STATIC_ROOT when it starts
    response = client.get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert response.status_code == 200
    assert response["Content-Encoding"] == "gzip"
    assert "immutable" in response["Cache-Control"]
