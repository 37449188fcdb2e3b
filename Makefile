# Switchboard: `make test` runs the suite, `make demo` runs the console with demo data.
# Both create .venv and install the project (pip install -e ".[dev]") when needed.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install services browser test demo clean

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

test: install services browser
	$(VENV)/bin/pytest $(PYTEST_ARGS)

demo: install services
	@scripts/demo.sh

clean:
	rm -rf $(VENV) .pytest_cache
