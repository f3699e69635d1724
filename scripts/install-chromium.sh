#!/usr/bin/env bash
# Makes sure the browser for the end-to-end tests (test/ui/) is here: Debian's `chromium`, driven by
# playwright-core (which downloads no browser of its own).
#   - already installed (or CHROMIUM_PATH points at one): prints its version, exits 0;
#   - root with apt-get (CI, containers): installs the `chromium` package, exits 0 when it runs;
#   - otherwise: says exactly what to install and exits 1, so `npm test` stops with that message
#     instead of reporting browser tests that never ran;
#   - CLMAE_SKIP_BROWSER_TESTS=1: says the browser tests are skipped, exits 0 (test/ui/ skips too).
set -euo pipefail

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"

if [ "${CLMAE_SKIP_BROWSER_TESTS:-}" = 1 ]; then
  echo "CLMAE_SKIP_BROWSER_TESTS=1: the browser end-to-end tests are SKIPPED; chromium is not checked."
  exit 0
fi

report() {
  echo "chromium for the browser tests: $CHROMIUM ($("$CHROMIUM" --version 2>/dev/null | head -n 1))"
}

if [ -x "$CHROMIUM" ]; then
  report
  exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$CHROMIUM" = /usr/bin/chromium ]; then
  echo "chromium is missing; installing Debian's package with apt-get (a few minutes)..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends chromium
  if [ -x "$CHROMIUM" ]; then
    report
    exit 0
  fi
  echo "apt-get finished but $CHROMIUM is still missing." >&2
  exit 1
fi

cat >&2 <<MSG
The browser end-to-end tests (test/ui/) need Chromium at $CHROMIUM, and it is not there.
This script installs it only as root with apt-get. Install it yourself, then run the tests again:
  Debian / Ubuntu:  sudo apt-get install chromium     (Ubuntu: a non-snap chromium build)
  Fedora:           sudo dnf install chromium
  macOS:            brew install --cask chromium, then CHROMIUM_PATH=/Applications/Chromium.app/Contents/MacOS/Chromium
Or point CHROMIUM_PATH at any Chromium or Chrome binary (version 120 or later).
MSG
exit 1
