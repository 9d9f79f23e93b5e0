#!/usr/bin/env bash
# The dashboard in Debian's chromium, driven by playwright-core (tests/browser/dashboard.mjs).
# Needs `make web` (npm ci) and the chromium package, both installed by `make test`.
set -u
cd "$(dirname "$0")/../.." || exit 1
[ -x /usr/bin/chromium ] || { echo "chromium is missing: run make deps"; exit 1; }
[ -d web/node_modules/playwright-core ] || { echo "web/node_modules is missing: run make web"; exit 1; }
exec node tests/browser/dashboard.mjs
