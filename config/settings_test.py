"""Settings for pytest: the real PostgreSQL and Redis, kept apart from development data.

pytest-django creates ``test_<name>`` from DATABASE_URL; Redis uses its own database
number (TEST_REDIS_URL) so a running demo worker never takes a test's jobs.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ENV", "test")

from config.settings import *  # noqa: E402,F401,F403
from config.settings import RQ_QUEUES, env, redis_url_with_timeouts  # noqa: E402

REDIS_URL = env.str("TEST_REDIS_URL", default="redis://127.0.0.1:6379/15")
for _queue in RQ_QUEUES.values():
    _queue["URL"] = redis_url_with_timeouts(REDIS_URL)

DEBUG = False
# Most tests run no worker; tests/test_health.py turns the workers_down alert back on.
ALERT_WORKERS_DOWN = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ALERT_EMAILS = ["owner-alerts@example.test"]
# Each test gets a fresh connection; persistent ones would outlive pytest-django's
# database set-up.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405

# Tests never reach the real Stripe: anything not pointed at localstripe by a fixture
# fails fast against the discard port. The dj-stripe mirror needs a Stripe to fetch
# related objects from, so it is on only where the localstripe fixture turns it on.
STRIPE_API_BASE = "http://127.0.0.1:9"
STRIPE_MIRROR_ENABLED = False
# Tests drain hundreds of times; a pause at the end of each would add up. The tests of
# the debounce itself (tests/test_pipeline_drain.py) turn it on.
DRAIN_SIGNAL_DEBOUNCE_SECONDS = env.float("DRAIN_SIGNAL_DEBOUNCE_SECONDS", default=0.0)
