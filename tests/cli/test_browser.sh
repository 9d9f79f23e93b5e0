#!/usr/bin/env bash
# The dashboard in Debian's chromium, driven by playwright-core (tests/browser/dashboard.mjs, and
# tests/browser/private.mjs against a daemon whose reads need a token, tests/browser/lnremove.mjs
# for LN-removal children, tests/browser/report.mjs for a sweep's report view and its export).
# Needs `make web` (npm ci) and the chromium package, both installed by `make test`.
set -u
cd "$(dirname "$0")/../.." || exit 1
[ -x /usr/bin/chromium ] || { echo "chromium is missing: run make deps"; exit 1; }
[ -d web/node_modules/playwright-core ] || { echo "web/node_modules is missing: run make web"; exit 1; }
node tests/browser/dashboard.mjs; rc=$?
# the same dashboard when reads need a token (reads_open = false): token entry, own runs only,
# live updates through the session cookie
node tests/browser/private.mjs || rc=1
# LN removal: a child run's loss chart marks each removal step, parent and child link each other
node tests/browser/lnremove.mjs || rc=1
# a recipe sweep's report: checks with their numbers, the figures, the self-contained HTML export
node tests/browser/report.mjs || rc=1
exit $rc
