"""Switchboard settings, read from the environment with django-environ.

``DJANGO_ENV`` picks the mode: ``development`` (default, local defaults for every
service), ``test`` (used by pytest through ``config.settings_test``) or ``production``
(every secret and service URL must be given; a missing one stops start-up with one
message naming all of them). ``.env.example`` lists every variable.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A developer's .env is read when present; ENV_FILE points elsewhere (or at /dev/null).
_env_file = os.environ.get("ENV_FILE", str(BASE_DIR / ".env"))
if _env_file and Path(_env_file).is_file():
    env.read_env(_env_file)

DJANGO_ENV = env.str("DJANGO_ENV", default="development")
if DJANGO_ENV not in {"development", "test", "production"}:
    raise ImproperlyConfigured(
        f"DJANGO_ENV must be development, test or production, not {DJANGO_ENV!r}."
    )
PRODUCTION = DJANGO_ENV == "production"

# Variables production refuses to start without. Development and tests fall back to
# the local services every machine runs.
REQUIRED_IN_PRODUCTION = (
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
)
if PRODUCTION:
    _missing = [name for name in REQUIRED_IN_PRODUCTION if not env.str(name, default="")]
    if _missing:
        raise ImproperlyConfigured(
            "Switchboard cannot start in production: missing required environment "
            f"variable(s): {', '.join(_missing)}. See .env.example."
        )

_LOCAL_DEFAULTS = {
    "SECRET_KEY": "django-insecure-local-development-only",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/switchboard",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "STRIPE_SECRET_KEY": "sk_test_switchboardLocalDevelopmentKey",
    "STRIPE_WEBHOOK_SECRET": "whsec_local_development_secret",
}


def _required(name: str) -> str:
    """A required value: from the environment, or the local default outside production."""
    value = env.str(name, default="")
    if PRODUCTION:
        return value  # presence was checked above
    return value or _LOCAL_DEFAULTS[name]


SECRET_KEY = _required("SECRET_KEY")
DEBUG = env.bool("DEBUG", default=DJANGO_ENV == "development")
ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- applications -----------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "guardian",
    "axes",
    "django_rq",
    "djstripe",
    # Second factor for staff: TOTP devices (README "Two factors for staff").
    "django_otp",
    "django_otp.plugins.otp_totp",
    # Passkeys (WebAuthn) as a further second factor, where the browser offers them.
    "django_otp_webauthn",
    # Switchboard, bottom layer first (README: "How the apps fit together"). crm_sync
    # before support: their subscribers to billing's events run in this order.
    "audit",
    "customers",
    "delivery",
    "billing",
    "crm_sync",
    "support",
    "provisioning",
    "console",
]
if not PRODUCTION:
    # Development and test aids (demo seeding, localstripe bridge, benchmarks' commands).
    INSTALLED_APPS.append("devkit")

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "audit.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # request.user.is_verified(): the session's second factor (django-otp), then the gate
    # that keeps a staff session without one out of every console, admin and finance page.
    "django_otp.middleware.OTPMiddleware",
    "customers.middleware.TwoFactorMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    # axes last, as its documentation asks: it turns lockouts into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- data stores ----------------------------------------------------------------------
DATABASES = {"default": env.db_url_config(_required("DATABASE_URL"))}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# The webhook's INSERT binds on the server and is prepared at its first run on a
# connection (billing.services._insert_event). Django turns psycopg's prepared statements
# off unless prepare_threshold is set; its own cursors bind on the client and never
# prepare, so this prepares the webhook insert alone. Set WEBHOOK_INSERT_PREPARED=false
# behind a pooler that cannot keep prepared statements (PgBouncer in transaction mode
# before 1.21): the insert is then bound on the server but not prepared.
if env.bool("WEBHOOK_INSERT_PREPARED", default=True):
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = _required("REDIS_URL")
# Queues: `webhooks` (Stripe event processing), `sync` (CRM/helpdesk/email delivery),
# `default` (everything else). Jobs are enqueued only after the transaction that
# justifies them commits (config.queueing.enqueue_on_commit).
# Every Redis client has bounded waits: a Redis that accepts connections and never answers
# must cost a request at most these many seconds, not hang it. Product code builds its
# clients with config.queueing.redis_client() (these timeouts, one quick retry);
# django-rq's own clients (admin dashboard, rqworker) read them from the URL's query.
REDIS_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=1.0)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=1.0)
# Workers (manage.py run_workers): heartbeat TTL. An idle worker blocks on the queues for
# TTL - 15 s and heartbeats after each wait, so a live worker's heartbeat is never older
# than about that; WORKER_STALE_SECONDS (liveness on /healthz, the dashboard and the
# "no worker alive" alert) allows one missed beat.
RQ_WORKER_TTL = env.int("RQ_WORKER_TTL", default=60)
WORKER_STALE_SECONDS = env.int("WORKER_STALE_SECONDS", default=2 * RQ_WORKER_TTL)
# Alert (workers_down) when no worker is alive; the test settings turn it off except in
# its own test, since most tests run no worker.
ALERT_WORKERS_DOWN = env.bool("ALERT_WORKERS_DOWN", default=True)


def redis_url_with_timeouts(url: str) -> str:
    """``url`` with connect/read timeouts in its query, for clients django-rq builds itself."""
    if "socket_timeout" in url:
        return url
    sep = "&" if "?" in url else "?"
    return (
        f"{url}{sep}socket_connect_timeout={REDIS_CONNECT_TIMEOUT:g}"
        f"&socket_timeout={REDIS_SOCKET_TIMEOUT:g}"
    )


RQ_QUEUES = {
    name: {"URL": redis_url_with_timeouts(REDIS_URL), "DEFAULT_TIMEOUT": timeout}
    for name, timeout in (("webhooks", 120), ("sync", 120), ("default", 600))
}
RQ = {"COMMIT_MODE": "on_db_commit"}
RQ_SHOW_ADMIN_LINK = True

# --- auth, roles, lockout -----------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # axes first: it refuses a locked-out username+IP before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    # django-guardian: object-level permissions (per refund request, per support queue).
    "guardian.backends.ObjectPermissionBackend",
]
# No anonymous guardian user: the console grants nothing to anonymous visitors.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = True

AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=30))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
# Only the admin login form counts failures (the console has no other password form).
AXES_USERNAME_FORM_FIELD = "username"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "admin:login"

# Two factors for staff (customers/two_factor.py). Staff in these roles (and superusers)
# must enrol a second factor at their first login and verify it at every login before any
# console, admin, finance or job-queue page opens; anyone else who enrolled verifies too.
# Empty (TWO_FACTOR_REQUIRED_ROLES=) turns the requirement off.
TWO_FACTOR_REQUIRED_ROLES = [
    role.strip()
    for role in env.list("TWO_FACTOR_REQUIRED_ROLES", default=["owner", "finance_admin"])
    if role.strip()
]
# Adding or removing a device and new recovery codes need a code entered this recently.
TWO_FACTOR_REVERIFY_MINUTES = env.int("TWO_FACTOR_REVERIFY_MINUTES", default=10)
TWO_FACTOR_RECOVERY_CODES = 10
# The name authenticator apps show next to the code.
OTP_TOTP_ISSUER = env.str("OTP_TOTP_ISSUER", default="Switchboard")
# Wrong codes: each further try waits 1, 2, 4, 8 ... seconds (django-otp's throttling).
OTP_TOTP_THROTTLE_FACTOR = 1
# Passkeys (django-otp-webauthn) as a second factor only: never instead of the password.
# The relying party is the host the console is reached at (customers.two_factor); the
# origins the browser may report are PASSKEY_ORIGINS when set, else this request's own.
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
OTP_WEBAUTHN_RP_NAME = "Switchboard"
OTP_WEBAUTHN_RP_ID_CALLABLE = "customers.two_factor.passkey_rp_id"
OTP_WEBAUTHN_HELPER_CLASS = "customers.two_factor.PasskeyHelper"
PASSKEY_ORIGINS = env.list("PASSKEY_ORIGINS", default=[])
OTP_WEBAUTHN_ALLOWED_ORIGINS = PASSKEY_ORIGINS
# Without PASSKEY_ORIGINS the origin is the request's own (customers.two_factor.PasskeyHelper),
# which the library's start-up check cannot see; hosts are still limited by ALLOWED_HOSTS.
SILENCED_SYSTEM_CHECKS = [] if PASSKEY_ORIGINS else ["otp_webauthn.E030"]

# --- Stripe (dj-stripe) -------------------------------------------------------------
STRIPE_SECRET_KEY = _required("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = _required("STRIPE_WEBHOOK_SECRET")
# The signing secret of a Connect endpoint (events of sellers' connected accounts, such
# as payout.failed): ``stripe_webhook_setup --connect``. Empty: no Connect endpoint.
STRIPE_CONNECT_WEBHOOK_SECRET = env.str("STRIPE_CONNECT_WEBHOOK_SECRET", default="")
STRIPE_LIVE_MODE = STRIPE_SECRET_KEY.startswith(("sk_live_", "rk_live_"))
STRIPE_LIVE_SECRET_KEY = STRIPE_SECRET_KEY if STRIPE_LIVE_MODE else ""
STRIPE_TEST_SECRET_KEY = "" if STRIPE_LIVE_MODE else STRIPE_SECRET_KEY
# Base URL of the Stripe API; tests and the demo point it at localstripe.
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_TIMEOUT_SECONDS = env.int("STRIPE_TIMEOUT_SECONDS", default=20)
# The Stripe API version we speak: every API call (ours and dj-stripe's) and the webhook
# endpoint `stripe_webhook_setup --register` creates. The default is the version the code
# is written and tested for; events in other versions are still read (billing/shapes.py)
# and counted on the dashboard. README: "Stripe API versions".
STRIPE_API_VERSION = env.str("STRIPE_API_VERSION", default="2026-08-26.dahlia")
# Keep dj-stripe's mirror models in step with events (one handler run per event).
STRIPE_MIRROR_ENABLED = env.bool("STRIPE_MIRROR_ENABLED", default=True)
# Webhook receiving and processing (billing/). Stripe signs with a 300 s tolerance.
STRIPE_WEBHOOK_TOLERANCE = env.int("STRIPE_WEBHOOK_TOLERANCE", default=300)
# During a secret rotation, the previous secret is also accepted.
STRIPE_WEBHOOK_PREVIOUS_SECRET = env.str("STRIPE_WEBHOOK_PREVIOUS_SECRET", default="")
WEBHOOK_MAX_BODY_BYTES = 1024 * 1024
# Handler runs: attempts before "dead", and the exponential backoff (base * 2^n, capped,
# with full jitter).
HANDLER_MAX_ATTEMPTS = env.int("HANDLER_MAX_ATTEMPTS", default=8)
HANDLER_BACKOFF_BASE_SECONDS = env.float("HANDLER_BACKOFF_BASE_SECONDS", default=5.0)
HANDLER_BACKOFF_MAX_SECONDS = env.float("HANDLER_BACKOFF_MAX_SECONDS", default=3600.0)
# Sweeper: events stored but unprocessed after this delay are re-enqueued; runs
# "started" longer than the stuck timeout are taken to belong to a dead worker.
SWEEP_EVENT_DELAY_SECONDS = env.int("SWEEP_EVENT_DELAY_SECONDS", default=15)
SWEEP_STUCK_AFTER_SECONDS = env.int("SWEEP_STUCK_AFTER_SECONDS", default=60)
SWEEP_INTERVAL_SECONDS = env.int("SWEEP_INTERVAL_SECONDS", default=15)
# The events table is the queue (billing/services.py "draining"): a drain job claims up to
# DRAIN_BATCH_SIZE received events (or due handler runs) in one statement; a claim a
# worker never finished is taken again after DRAIN_CLAIM_SECONDS. Ingest sends one drain
# job only when none is pending (a Redis SET NX that lives DRAIN_SIGNAL_TTL_SECONDS); a
# drain job goes on for at most DRAIN_MAX_SECONDS, then hands over to a fresh job.
DRAIN_BATCH_SIZE = env.int("DRAIN_BATCH_SIZE", default=100)
# Follow-up runs are claimed in smaller batches: between two, a follow-up drain steps
# aside when new events wait, so customers are updated before the slower follow-ups.
DRAIN_RUNS_BATCH_SIZE = env.int("DRAIN_RUNS_BATCH_SIZE", default=25)
DRAIN_CLAIM_SECONDS = env.int("DRAIN_CLAIM_SECONDS", default=60)
DRAIN_SIGNAL_TTL_SECONDS = env.int("DRAIN_SIGNAL_TTL_SECONDS", default=5)
# A web process that signalled the events drain (or found it signalled) less than this long
# ago skips the Redis round trip for the next events; the drain waits twice as long before
# it ends and claims once more, so none is left without a drain (0: every event signals).
DRAIN_SIGNAL_DEBOUNCE_SECONDS = env.float("DRAIN_SIGNAL_DEBOUNCE_SECONDS", default=0.05)
DRAIN_MAX_SECONDS = env.float("DRAIN_MAX_SECONDS", default=30.0)
# Retention, purged by run_scheduler in batches every RETENTION_INTERVAL_MINUTES (0: off):
# delivered and superseded outbox rows, succeeded handler runs, and the payloads of
# processed Stripe events (the row stays, with its ids, for de-duplication and history).
RETENTION_OUTBOX_DAYS = env.int("RETENTION_OUTBOX_DAYS", default=30)
RETENTION_HANDLER_RUN_DAYS = env.int("RETENTION_HANDLER_RUN_DAYS", default=90)
RETENTION_EVENT_PAYLOAD_DAYS = env.int("RETENTION_EVENT_PAYLOAD_DAYS", default=400)
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=1000)
RETENTION_INTERVAL_MINUTES = env.int("RETENTION_INTERVAL_MINUTES", default=60)
# Reconcile against Stripe every N minutes from the scheduler (0 turns it off).
RECONCILE_INTERVAL_MINUTES = env.int("RECONCILE_INTERVAL_MINUTES", default=360)
# Finance actions (billing/refunds.py): refunds above this amount, in the smallest currency
# unit (20000 = 200.00 USD), need a second person's approval.
REFUND_APPROVAL_THRESHOLD = env.int("REFUND_APPROVAL_THRESHOLD", default=20000)
# An action Stripe accepted but did not confirm by webhook within this time raises an alert.
FINANCE_CONFIRMATION_ALERT_MINUTES = env.int("FINANCE_CONFIRMATION_ALERT_MINUTES", default=30)
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
DJSTRIPE_USE_NATIVE_JSONFIELD = True
DJSTRIPE_WEBHOOK_VALIDATION = "verify_signature"

# --- downstream vendors --------------------------------------------------------------------
# Base URLs are settings so tests and the demo point them at local servers. A vendor
# without a token uses the local (logging) implementation.
HUBSPOT_BASE_URL = env.str("HUBSPOT_BASE_URL", default="https://api.hubapi.com")
HUBSPOT_TOKEN = env.str("HUBSPOT_TOKEN", default="")
ZENDESK_BASE_URL = env.str("ZENDESK_BASE_URL", default="")
ZENDESK_EMAIL = env.str("ZENDESK_EMAIL", default="")
ZENDESK_TOKEN = env.str("ZENDESK_TOKEN", default="")
# Zendesk group id per Switchboard queue slug ("billing=360001,disputes=360002"): tickets
# are created in their queue's group, so a private queue (disputes) is private at Zendesk
# too when that group's agents are restricted to it. A private queue without a group is
# refused rather than opened where every agent sees it.
ZENDESK_GROUP_IDS = {
    slug.strip(): int(group)
    for slug, group in env.dict("ZENDESK_GROUP_IDS", default={}).items()
    if slug.strip() and str(group).strip()
}
# The agent a ticket is assigned to when Switchboard solves it and nobody holds it
# (Zendesk refuses to solve an unassigned ticket); empty: a member of the ticket's group.
ZENDESK_SOLVE_ASSIGNEE_ID = env.int("ZENDESK_SOLVE_ASSIGNEE_ID", default=0)

# --- downstream syncs: outbox delivery (delivery/, crm_sync/, support/) ------------------------
# Client-side rate limits per vendor, shared by every worker, with defaults that fit the
# smallest paid plan (raise them to your plan's): HubSpot private apps on Free/Starter
# allow 100 requests per 10 s (Professional/Enterprise 190), and the CRM search endpoints
# 4 requests/s per token on top; Zendesk Support allows 200 requests/min on its smallest
# plan (400, 700 on larger ones). The limiter spaces requests SYNC_RATE_HEADROOM of the
# limit apart, so network jitter never pushes a window over the vendor's count.
HUBSPOT_REQUESTS_PER_10_SECONDS = env.int("HUBSPOT_REQUESTS_PER_10_SECONDS", default=100)
HUBSPOT_SEARCH_PER_SECOND = env.float("HUBSPOT_SEARCH_PER_SECOND", default=4.0)
ZENDESK_REQUESTS_PER_MINUTE = env.int("ZENDESK_REQUESTS_PER_MINUTE", default=200)
# Requests per second by limiter bucket; "<vendor>_<name>" buckets (hubspot_search) are
# taken on top of the vendor's own and held with it on a 429.
SYNC_RATE_LIMITS = {
    "hubspot": HUBSPOT_REQUESTS_PER_10_SECONDS / 10,
    "hubspot_search": HUBSPOT_SEARCH_PER_SECOND,
    "zendesk": ZENDESK_REQUESTS_PER_MINUTE / 60,
    "slack": env.float("SLACK_RATE_PER_SECOND", default=1.0),
    "product": env.float("PRODUCT_WEBHOOK_RATE_PER_SECOND", default=20.0),
}
SYNC_RATE_HEADROOM = env.float("SYNC_RATE_HEADROOM", default=0.95)
# A short window of few requests needs more room: at 0.95, HubSpot's 4 searches per 1 s
# leave 50 ms for jitter between our clock and theirs; at 0.85, 0.18 s.
SYNC_RATE_HEADROOMS = {"hubspot_search": env.float("HUBSPOT_SEARCH_HEADROOM", default=0.85)}
# A 429 holds the whole vendor back for every worker: for Retry-After when the vendor
# sends it; HubSpot's 429s have none, so for the window of the policy it names
# (SECONDLY: 1 s, TEN_SECONDLY_ROLLING: 10 s), else for this long.
SYNC_RATE_HOLD_SECONDS = env.float("SYNC_RATE_HOLD_SECONDS", default=10.0)
# A worker waits at most this long for its rate-limit slot; beyond it the row is
# rescheduled instead of holding the worker.
SYNC_RATE_MAX_WAIT_SECONDS = env.float("SYNC_RATE_MAX_WAIT_SECONDS", default=5.0)
SYNC_HTTP_TIMEOUT_SECONDS = env.float("SYNC_HTTP_TIMEOUT_SECONDS", default=10.0)
# Retries: exponential backoff with jitter (base * 2^n, capped) until the horizon has
# passed since the row was written; then the row is dead and staff are alerted.
SYNC_RETRY_HORIZON_HOURS = env.float("SYNC_RETRY_HORIZON_HOURS", default=72.0)
SYNC_BACKOFF_BASE_SECONDS = env.float("SYNC_BACKOFF_BASE_SECONDS", default=30.0)
SYNC_BACKOFF_MAX_SECONDS = env.float("SYNC_BACKOFF_MAX_SECONDS", default=3600.0)
# A channel paused by a configuration error (401/403, missing token) is probed this often.
SYNC_PAUSE_PROBE_SECONDS = env.int("SYNC_PAUSE_PROBE_SECONDS", default=300)
# Product name used in customer emails (templates/emails/).
EMAIL_PRODUCT_NAME = env.str("EMAIL_PRODUCT_NAME", default="Switchboard")

# --- provisioning and dunning (provisioning/) --------------------------------------------
# Dunning: access is revoked (customer.revoked to the product) only when a customer has at
# least DUNNING_MAX_FAILURES failed payments since their last successful one AND
# DUNNING_GRACE_DAYS have passed since the first of those failures. One failed charge
# never revokes by itself; a later payment ends the dunning and entitles again.
DUNNING_MAX_FAILURES = env.int("DUNNING_MAX_FAILURES", default=3)
DUNNING_GRACE_DAYS = env.float("DUNNING_GRACE_DAYS", default=7.0)
# After a secret rotation the previous secret still signs for this long (two signatures
# in webhook-signature), so the product can switch over without losing a message.
PRODUCT_WEBHOOK_SECRET_OVERLAP_HOURS = env.float(
    "PRODUCT_WEBHOOK_SECRET_OVERLAP_HOURS", default=24.0
)

# --- alerts and email ------------------------------------------------------------------
EMAIL_CONFIG = env.email_url(
    "EMAIL_URL", default="smtp://localhost:25" if PRODUCTION else "consolemail://"
)
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="switchboard@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ALERT_EMAILS = env.list("ALERT_EMAILS", default=[])
SLACK_WEBHOOK_URL = env.str("SLACK_WEBHOOK_URL", default="")

# --- console: dashboard, alert rules, account-state API, logs ---------------------------------
# Alert thresholds (console/alert_rules.py, evaluated by run_scheduler every sweep).
ALERT_WEBHOOK_FAILURES_MAX = env.int("ALERT_WEBHOOK_FAILURES_MAX", default=3)
ALERT_WEBHOOK_FAILURES_MINUTES = env.int("ALERT_WEBHOOK_FAILURES_MINUTES", default=10)
ALERT_EVENT_LAG_P95_SECONDS = env.float("ALERT_EVENT_LAG_P95_SECONDS", default=60.0)
ALERT_EVENT_LAG_MINUTES = env.int("ALERT_EVENT_LAG_MINUTES", default=15)
# No Stripe event for this long while subscriptions are active: alert, dashboard warning.
ALERT_NO_EVENT_HOURS = env.int("ALERT_NO_EVENT_HOURS", default=6)
# Account-state API: state not confirmed by Stripe for this long is "stale".
API_STATE_STALE_HOURS = env.int("API_STATE_STALE_HOURS", default=24)
API_RATE_LIMIT_PER_MINUTE = env.int("API_RATE_LIMIT_PER_MINUTE", default=120)
# Links out from the customer page. {id} is replaced; empty: the id is shown without a link.
STRIPE_DASHBOARD_URL = env.str("STRIPE_DASHBOARD_URL", default="https://dashboard.stripe.com")
CRM_CONTACT_URL_TEMPLATE = env.str("CRM_CONTACT_URL_TEMPLATE", default="")
HELPDESK_USER_URL_TEMPLATE = env.str(
    "HELPDESK_USER_URL_TEMPLATE",
    default=f"{ZENDESK_BASE_URL.rstrip('/')}/agent/users/{{id}}" if ZENDESK_BASE_URL else "",
)
# Log lines as JSON (one object per line) in production, readable text elsewhere.
LOG_FORMAT = env.str("LOG_FORMAT", default="json" if PRODUCTION else "plain")

# --- security ---------------------------------------------------------------------------
# Content-Security-Policy (django-csp): only our own origin, no inline script or style
# anywhere. The one exception is the <style> pygal embeds in a chart's inline SVG, which
# carries the request's nonce (console/charts.py); nothing else gets one.
from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
    if not SECURE_HSTS_PRELOAD:
        # Preload-listing is hard to undo; the operator opts in, so the reminder is noise.
        SILENCED_SYSTEM_CHECKS.append("security.W021")
    if env.bool("TRUST_X_FORWARDED_PROTO", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- i18n, static ------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "static"
# Static files are served by the web process itself (WhiteNoise): gunicorn with DEBUG off
# serves the admin's CSS and JS from STATIC_ROOT (filled by collectstatic, `make serve`),
# compressed and with hashed names cached for a year. Tests and development keep Django's
# plain storage so no collectstatic is needed before a test run.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION or env.bool("STATIC_MANIFEST", default=False)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- logging: never card data, secrets or webhook bodies ------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "audit.logging.RequestContextFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "audit.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": LOG_FORMAT,
            "filters": ["request_context"],
        },
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # axes logs every failed login with the username at WARNING/INFO; keep the
        # start-up banner quiet.
        "axes": {"level": "WARNING"},
        # The Stripe SDK logs every request at INFO (hundreds of lines in `make demo`);
        # STRIPE_LOG_LEVEL=INFO brings them back when debugging a Stripe call.
        "stripe": {"level": env.str("STRIPE_LOG_LEVEL", default="WARNING")},
    },
}
