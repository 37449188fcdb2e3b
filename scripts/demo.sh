#!/usr/bin/env bash
# Runs the console with demo data: localstripe (a fake Stripe), the web server, a worker
# on all queues and the scheduler, then seeds about 20 customers through the Stripe API
# whose events arrive by webhook. Ctrl-C stops everything this script started.
#
# The demo has its own database and Redis database, recreated on every run, so it never
# touches development data: DEMO_DATABASE_URL (default .../switchboard_demo) and
# DEMO_REDIS_URL (default redis://127.0.0.1:6379/2).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
next_free() { local p=$1; while ! port_free "$p"; do p=$((p + 1)); done; echo "$p"; }
# Poll a URL until it answers (bounded: 20 s), with the venv's Python (no curl needed).
wait_url() {
  $PY - "$1" <<'PYEOF'
import sys, time, urllib.request
deadline = time.monotonic() + 20
while True:
    try:
        urllib.request.urlopen(sys.argv[1], timeout=1)
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(f"{sys.argv[1]} did not answer within 20 s")
        time.sleep(0.1)
PYEOF
}
PORT=$(next_free "${DEMO_PORT:-8000}")
STRIPE_PORT=$(next_free "${DEMO_STRIPE_PORT:-8420}")

export DJANGO_ENV=development
export DATABASE_URL=${DEMO_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/switchboard_demo}
export REDIS_URL=${DEMO_REDIS_URL:-redis://127.0.0.1:6379/2}
export STRIPE_API_BASE="http://127.0.0.1:$STRIPE_PORT"
export STRIPE_SECRET_KEY=${STRIPE_SECRET_KEY:-sk_test_switchboardLocalDevelopmentKey}
export ALLOWED_HOSTS=127.0.0.1,localhost
# Warnings and errors only: the demo's own progress and the box at the end are what a
# person reads. LOG_LEVEL=INFO make demo shows every request, job and Stripe call.
export LOG_LEVEL=${LOG_LEVEL:-WARNING}

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "Stopping demo processes..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

echo "Preparing a fresh demo database and queue..."
$PY scripts/ensure_db.py --recreate
$PY -c "import os, redis; redis.Redis.from_url(os.environ['REDIS_URL']).flushdb()"
# migrate takes a minute or two on a fresh database (dj-stripe has ~300 migrations):
# show how far it is instead of a silent terminal.
total=$($PY manage.py showmigrations --plan 2>/dev/null | grep -c '^\[ \]' || true)
$PY manage.py migrate --no-input -v 1 2>&1 | $PY -u -c '
import sys
total, done = int(sys.argv[1] or 0), 0
shown = total or "?"
for line in sys.stdin:
    if line.lstrip().startswith("Applying "):
        done += 1
        sys.stdout.write(f"\r  Applying migrations: {done}/{shown}")
        sys.stdout.flush()
    elif line.strip() and not line.startswith(("Operations to perform", "  Apply all", "Running migrations")):
        sys.stdout.write("\n" + line)
print(f"\r  Applying migrations: {done}/{total or done}, done.")
' "$total"

$PY -m devkit.localstripe --port "$STRIPE_PORT" >/tmp/switchboard-demo-localstripe.log 2>&1 &
pids+=($!)
wait_url "$STRIPE_API_BASE/js.stripe.com/v3/"

# finance actions
# Refunds above 10.00 need a second person's approval in the demo (default 200.00), so the
# two-person rule can be tried on the seeded payments.
export REFUND_APPROVAL_THRESHOLD=${REFUND_APPROVAL_THRESHOLD:-1000}
# localstripe never sends charge.refunded or customer.subscription.updated: the bridge
# posts them (signed, built from localstripe's objects) so finance actions get confirmed.
# It refuses to run unless STRIPE_API_BASE is a localstripe on this machine.
$PY manage.py localstripe_bridge --base-url "http://127.0.0.1:$PORT" --interval 2 &
pids+=($!)
# end finance actions

$PY manage.py runserver "127.0.0.1:$PORT" --noreload &
pids+=($!)
$PY manage.py run_workers webhooks sync default &
pids+=($!)
$PY manage.py run_scheduler &
pids+=($!)
wait_url "http://127.0.0.1:$PORT/healthz"

# The product behind the console: answers every signed webhook 2xx, so paying customers
# are provisioned and get their welcome email (provisioning/ README section).
PRODUCT_PORT=$(next_free "${DEMO_PRODUCT_PORT:-8430}")
$PY manage.py demo_product --port "$PRODUCT_PORT" >/tmp/switchboard-demo-product.log 2>&1 &
pids+=($!)
for _ in $(seq 50); do grep -q "Demo product listening" /tmp/switchboard-demo-product.log && break; sleep 0.2; done

# Seeds customers in localstripe; their webhooks reach the console over HTTP, and from
# then on localstripe sends straight to the console's webhook URL.
$PY manage.py demo_stripe_seed --customers "${DEMO_CUSTOMERS:-20}" --base-url "http://127.0.0.1:$PORT"
$PY manage.py demo_marketplace_seed --base-url "http://127.0.0.1:$PORT"
# One reconcile at start, once the worker has processed the seeded events.
$PY manage.py demo_reconcile

# The logins and URLs last, in a box, so they are the last thing on the screen.
box() {
  local width=0 line border
  for line in "$@"; do (( ${#line} > width )) && width=${#line}; done
  border=$(printf '%*s' $((width + 2)) '' | tr ' ' '-')
  echo "+$border+"
  for line in "$@"; do printf '| %-*s |\n' "$width" "$line"; done
  echo "+$border+"
}
mapfile -t logins < <($PY manage.py demo_setup)
echo
box "Switchboard console: http://127.0.0.1:$PORT/admin/" \
    "Operations dashboard: http://127.0.0.1:$PORT/admin/console/" \
    "API description: http://127.0.0.1:$PORT/api/v1/openapi.json" \
    "localstripe (fake Stripe): $STRIPE_API_BASE" \
    "" "${logins[@]}" "" \
    "Ctrl-C stops web, worker, scheduler and localstripe."
wait
