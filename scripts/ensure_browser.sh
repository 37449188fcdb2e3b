#!/usr/bin/env bash
# The browser test (tests/test_finance_browser.py) drives Debian's chromium package with
# Playwright; no browser is ever downloaded by Playwright. Installs chromium with apt-get
# when it is missing (as root), or says exactly what to do.
set -euo pipefail
CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
echo "ensure_browser: $CHROMIUM is missing; installing Debian's chromium package..."
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_browser: FAILED: no apt-get on this machine. Install Chromium yourself and set" >&2
  echo "  CHROMIUM_PATH=/path/to/chromium (the browser test needs it)." >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo -n"; else
    echo "ensure_browser: FAILED: installing chromium needs root: run 'apt-get install -y chromium' as root." >&2
    exit 1
  fi
fi
if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; }; then
  echo "ensure_browser: FAILED: 'apt-get install -y chromium' did not succeed (see above)." >&2
  exit 1
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "ensure_browser: FAILED: chromium installed but $CHROMIUM is not there; set CHROMIUM_PATH." >&2
  exit 1
fi
echo "ensure_browser: $("$CHROMIUM" --version 2>/dev/null | head -1)"
