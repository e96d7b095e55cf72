#!/usr/bin/env bash
# Install Debian's Chromium for the live page's browser test (playwright-core drives it with
# executablePath /usr/bin/chromium; Playwright's own browser download is never used).
# Idempotent: does nothing if /usr/bin/chromium is already there.
#   scripts/browser/install-chromium.sh          (run by the test's setup when needed)
set -euo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  echo "chromium: already installed ($("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")), nothing to do"
  exit 0
fi

if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: $CHROMIUM not found; install it as root on Debian/Ubuntu with: apt-get install -y chromium (the browser test needs it at $CHROMIUM)" >&2
  exit 1
fi

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    chromium fonts-dejavu-core
}

start=$(date +%s)
if ! apt_install; then
  echo "chromium: apt-get install failed (package lists missing or stale?); running apt-get update and retrying" >&2
  apt-get update -q -o DPkg::Lock::Timeout=300
  apt_install
fi

if [ ! -x "$CHROMIUM" ]; then
  echo "error: the chromium package installed but $CHROMIUM is missing" >&2
  exit 1
fi
echo "chromium: installed $(dpkg-query -W -f='${Version}' chromium) in $(( $(date +%s) - start ))s"
