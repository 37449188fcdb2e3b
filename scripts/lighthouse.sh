#!/usr/bin/env bash
# make lighthouse: installs Lighthouse from npm into .lighthouse/ (once; no browser is
# downloaded: Debian's chromium is used) and measures the running demo (`make demo` in
# another terminal, same DEMO_PORT / DEMO_DATABASE_URL). See scripts/lighthouse.py.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f .lighthouse/node_modules/lighthouse/cli/index.js ]; then
  echo "Installing Lighthouse (npm) into .lighthouse/ ..."
  mkdir -p .lighthouse
  [ -f .lighthouse/package.json ] || echo '{"name": "switchboard-lighthouse", "private": true}' > .lighthouse/package.json
  (cd .lighthouse && PUPPETEER_SKIP_DOWNLOAD=1 npm install --no-save --no-audit --no-fund --silent lighthouse)
fi
exec .venv/bin/python scripts/lighthouse.py "$@"
