#!/usr/bin/env bash
# make bench-console: seed the benchmark database, start gunicorn on it, measure, stop.
# Uses its own database (BENCH_DATABASE_URL, name must contain "bench"), never the test
# or demo database. BENCH_SKIP_SEED=1 reuses the last seed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export DATABASE_URL="${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/switchboard_bench_console}"
export REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379/10}"
export DJANGO_ENV=development DEBUG=false LOG_LEVEL=WARNING ENV_FILE=/dev/null
export API_RATE_LIMIT_PER_MINUTE=100000000   # measure latency, not the limiter
PORT="${BENCH_PORT:-8765}"
CUSTOMERS="${BENCH_CUSTOMERS:-100000}"
EVENTS="${BENCH_EVENTS:-1000000}"

$PY scripts/ensure_db.py
$PY manage.py migrate --noinput -v0
if [ "${BENCH_SKIP_SEED:-0}" != "1" ]; then
  $PY manage.py console_bench_seed --customers "$CUSTOMERS" --events "$EVENTS"
fi

.venv/bin/gunicorn config.wsgi:application --bind "127.0.0.1:$PORT" \
  --workers "${BENCH_WORKERS:-2}" --log-level warning &
GUNICORN=$!
trap 'kill $GUNICORN 2>/dev/null; wait $GUNICORN 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if $PY -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/healthz', timeout=1)" 2>/dev/null; then
    break
  fi
  sleep 0.2   # bounded wait for the server to bind (100 tries)
done
$PY manage.py console_bench --url "http://127.0.0.1:$PORT" \
  --concurrency "${BENCH_CONCURRENCY:-4}" --requests "${BENCH_REQUESTS:-200}"
