"""Production start-up refuses missing secrets and turns the security settings on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REQUIRED = ["SECRET_KEY", "DATABASE_URL", "REDIS_URL", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"]
PRODUCTION_ENV = {
    "SECRET_KEY": "x7!Kq2@pL9#vR4$mN8^bT1&hZ6*cW3(eY5)uJ0-gF-production-check-key-0123456789",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/switchboard_prodcheck",
    "REDIS_URL": "redis://127.0.0.1:6379/14",
    "STRIPE_SECRET_KEY": "sk_test_prodcheck",
    "STRIPE_WEBHOOK_SECRET": "whsec_prodcheck",
    "ALLOWED_HOSTS": "console.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://console.example.com",
}


def run_python(code: str, **env_overrides: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in REQUIRED and k != "DJANGO_ENV"}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings", DJANGO_ENV="production", ENV_FILE="/dev/null"
    )
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


SETUP = "import django; django.setup()"


def test_production_without_any_required_variable_names_each_one():
    result = run_python(SETUP)
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    assert "missing required environment variable(s)" in message
    for name in REQUIRED:
        assert name in message


@pytest.mark.parametrize("missing", [["STRIPE_WEBHOOK_SECRET"], ["SECRET_KEY", "REDIS_URL"]])
def test_production_names_only_the_missing_variables(missing):
    present = {k: v for k, v in PRODUCTION_ENV.items() if k not in missing}
    result = run_python(SETUP, **present)
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    for name in REQUIRED:
        assert (name in message) == (name in missing), (name, message)


def test_production_security_settings_are_on():
    code = (
        SETUP
        + """
import json
from django.conf import settings as s
print(json.dumps({
  "session_secure": s.SESSION_COOKIE_SECURE, "csrf_secure": s.CSRF_COOKIE_SECURE,
  "hsts": s.SECURE_HSTS_SECONDS, "xfo": s.X_FRAME_OPTIONS, "ssl_redirect": s.SECURE_SSL_REDIRECT,
  "hosts": s.ALLOWED_HOSTS, "origins": s.CSRF_TRUSTED_ORIGINS, "debug": s.DEBUG,
  "stripe_base": s.STRIPE_API_BASE, "hubspot": s.HUBSPOT_BASE_URL,
}))
"""
    )
    result = run_python(
        code,
        **PRODUCTION_ENV,
        STRIPE_API_BASE="http://127.0.0.1:1",
        HUBSPOT_BASE_URL="http://127.0.0.1:2",
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout.strip().splitlines()[-1])
    assert values == {
        "session_secure": True,
        "csrf_secure": True,
        "hsts": 31536000,
        "xfo": "DENY",
        "ssl_redirect": True,
        "hosts": ["console.example.com"],
        "origins": ["https://console.example.com"],
        "debug": False,
        "stripe_base": "http://127.0.0.1:1",
        "hubspot": "http://127.0.0.1:2",
    }


def test_deploy_check_passes_in_production():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **{k: v for k, v in os.environ.items() if k not in REQUIRED},
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_ENV": "production",
            "ENV_FILE": "/dev/null",
            **PRODUCTION_ENV,
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
