#!/usr/bin/env bash
# Runs the console with demo data: web server and a worker on all queues.
# Ctrl-C stops everything this script started.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PORT=${DEMO_PORT:-8000}
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
while ! port_free "$PORT"; do PORT=$((PORT + 1)); done

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "Stopping demo processes..."
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

$PY scripts/ensure_db.py
$PY manage.py migrate --no-input -v 0
$PY manage.py demo_setup

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
$PY manage.py rqworker webhooks sync default &
pids+=($!)

echo
echo "Switchboard console: http://127.0.0.1:$PORT/admin/  (Ctrl-C stops web and worker)"
wait
