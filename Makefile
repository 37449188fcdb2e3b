# Switchboard: `make test` runs the suite, `make demo` runs the console with demo data.
# Both create .venv and install the project (pip install -e ".[dev]") when needed.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install services test demo clean bench-console

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

test: install services
	$(VENV)/bin/pytest $(PYTEST_ARGS)

demo: install services
	@scripts/demo.sh

# The console's benchmark (issue 6): seeds BENCH_CUSTOMERS/BENCH_EVENTS (100k/1M) into
# BENCH_DATABASE_URL, runs gunicorn on it and prints p50/p95 of dashboard, 360 page and API.
bench-console: install services
	@scripts/bench_console.sh

clean:
	rm -rf $(VENV) .pytest_cache
