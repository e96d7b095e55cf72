#!/usr/bin/env bash
# Install ClickHouse server + client (Debian 12 package, 18.16.1) without starting
# any system service. Idempotent: does nothing if ClickHouse is already present.
set -euo pipefail

if [ -x /usr/sbin/clickhouse-server ] || [ -x /usr/bin/clickhouse ]; then
  echo "clickhouse: already installed ($(command -v clickhouse-server || echo /usr/bin/clickhouse)), nothing to do"
  exit 0
fi

if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "error: ClickHouse not found; install it as root on Debian/Ubuntu with: apt-get install -y clickhouse-server clickhouse-client (or provide /usr/sbin/clickhouse-server some other way)" >&2
  exit 1
fi

# The package's postinst runs `invoke-rc.d clickhouse-server start || exit 1`, which
# would start a system-wide server (ports 8123/9000, /var/lib/clickhouse) or fail the
# install. Deny service starts for the duration of the install via policy-rc.d
# (exit 101 = "action forbidden"), unless one already exists (e.g. Docker images ship one).
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# temporary, created by earshot infra/clickhouse/install.sh\nexit 101\n' >"$POLICY"
  chmod 755 "$POLICY"
  trap 'rm -f "$POLICY"' EXIT
  trap 'exit 130' INT TERM HUP
fi

apt_install() {
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    -o DPkg::Lock::Timeout=300 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    clickhouse-server clickhouse-client
}

start=$(date +%s)
if ! apt_install; then
  echo "clickhouse: apt-get install failed (package lists missing or stale?); running apt-get update and retrying" >&2
  apt-get update -q -o DPkg::Lock::Timeout=300
  apt_install
fi

# On a host running systemd the postinst also enabled clickhouse-server.service for
# boot; we run our own instance, so disable the system one (no-op without systemd).
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  systemctl disable --now clickhouse-server.service >/dev/null 2>&1 || true
fi

echo "clickhouse: installed $(dpkg-query -W -f='${Version}' clickhouse-server) in $(( $(date +%s) - start ))s"
