# Switchboard: `make test` runs the suite, `make demo` runs the console with demo data.
# Both create .venv and install the project (pip install -e ".[dev]") when needed.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install services browser lint test proof serve demo lighthouse bench bench-drain bench-downstream bench-console clean

$(PY):
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "$(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

install: $(STAMP)

services:
	@scripts/services.sh

# Debian's chromium for the browser test (installed with apt-get when missing).
browser:
	@scripts/ensure_browser.sh

# The layer contracts (pyproject.toml [tool.importlinter]: apps depend one way) and ruff's
# lint and format checks. `make test` runs it first: a change that breaks a layer fails.
lint: install
	$(VENV)/bin/lint-imports
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint services browser
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The long proofs, after `make test` in CI (.ci/run): workers under run_workers outlive a
# Redis stopped for longer than their heartbeat TTL (every job done once), how long requests
# wait on a hanging Redis, and the no-5xx property tests at FUZZ_EXAMPLES (10,000 signed
# webhook bodies, 2,500 API paths), and the long sweep of tests/test_order_proof.py (every
# delivery order of the short journeys, 20,000 of the others through the status map, 200
# of each through the projection). Figures are printed.
FUZZ_EXAMPLES ?= 10000
proof: install services
	LOG_LEVEL=WARNING FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(VENV)/bin/pytest -q -s -p no:logging \
		$(PYTEST_ARGS) tests/test_no_server_errors.py -k "malformed or crafted"
	LOG_LEVEL=WARNING $(VENV)/bin/pytest -q -s -p no:logging -m proof $(PYTEST_ARGS)
	SWITCHBOARD_PROOF=1 $(VENV)/bin/pytest -q tests/test_order_proof.py $(PYTEST_ARGS)

# The web tier as in production: static files collected (hashed and compressed, served by
# WhiteNoise), DEBUG off, gunicorn with threads. BIND, WEB_WORKERS and WEB_THREADS tune it;
# DJANGO_ENV=production and its variables are for a real deployment.
BIND ?= 127.0.0.1:8000
WEB_WORKERS ?= 3
WEB_THREADS ?= 4
serve: install
	DEBUG=0 STATIC_MANIFEST=1 $(PY) manage.py collectstatic --no-input -v 0
	DEBUG=0 STATIC_MANIFEST=1 $(VENV)/bin/gunicorn config.wsgi --bind $(BIND) \
		--workers $(WEB_WORKERS) --threads $(WEB_THREADS) --worker-class gthread \
		--timeout 30 --graceful-timeout 30 --keep-alive 5 --access-logfile -

demo: install services
	@scripts/demo.sh

# Lighthouse (npm, Debian's chromium) on the running demo: login, customer page and
# dashboard, desktop and mobile, after a real login; prints a table, fails on a miss.
# Not part of `make test`. Run `make demo` first, with the same DEMO_* settings.
lighthouse: install browser
	@scripts/lighthouse.sh

bench: install services
	$(PY) -m scripts.bench $(BENCH_ARGS)

# The drains alone, in one process: ms, CPU and SQL statements per event of the events
# drain (batch path vs one customer at a time) and of the follow-up drain.
bench-drain: install services
	$(PY) -m scripts.bench_drain $(BENCH_ARGS)

# Downstream figures: failed payments -> tickets at a fake Zendesk and contacts at a fake
# HubSpot that enforce the smallest plans' limits: latency p50/p95 and each limit's
# busiest window (real workers) on its own database and Redis database.
BENCH_DOWNSTREAM_ENV = DATABASE_URL=$${BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/switchboard_bench_downstream} \
	REDIS_URL=$${BENCH_REDIS_URL:-redis://127.0.0.1:6379/9}
bench-downstream: install services
	$(BENCH_DOWNSTREAM_ENV) $(PY) scripts/ensure_db.py
	$(BENCH_DOWNSTREAM_ENV) $(PY) manage.py migrate --no-input -v 0
	$(BENCH_DOWNSTREAM_ENV) $(PY) scripts/bench_downstream.py $(BENCH_ARGS)
# The console's benchmark: seeds BENCH_CUSTOMERS/BENCH_EVENTS (100k/1M) into
# BENCH_DATABASE_URL, runs gunicorn on it and prints p50/p95 of dashboard, 360 page and API.
bench-console: install services
	@scripts/bench_console.sh

clean:
	rm -rf $(VENV) .pytest_cache
