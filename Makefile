# Switchboard: `make test` runs the suite, `make demo` runs the console with demo data.
# Both create .venv and install the project (pip install -e ".[dev]") when needed.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install services browser lint test proof demo bench bench-downstream bench-console clean

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

# The long sweep of tests/test_order_proof.py: every delivery order of the short journeys,
# 20,000 of the others through the status map, 200 of each through the projection.
proof: install services
	SWITCHBOARD_PROOF=1 $(VENV)/bin/pytest tests/test_order_proof.py $(PYTEST_ARGS)

demo: install services
	@scripts/demo.sh

bench: install services
	$(PY) -m scripts.bench $(BENCH_ARGS)

# Downstream figure: failed-payment webhook -> ticket at a local fake Zendesk, p50/p95
# (real workers) on its own database and Redis database.
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
