#!/usr/bin/env bash
# Usage: start.sh <state-dir>
# Renders config.xml + users.xml into <state-dir>, creates the data/log dirs and execs
# clickhouse-server in the FOREGROUND (it does not daemonize; the caller backgrounds it,
# records $! as the pid, polls http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/ping for "Ok.",
# and stops it with SIGTERM).
# Env: CLICKHOUSE_HTTP_PORT (18123), CLICKHOUSE_TCP_PORT (19000),
#      CLICKHOUSE_INTERSERVER_PORT (19009; 0 = don't open the interserver port),
#      CLICKHOUSE_LOG_LEVEL (information; or warning, error, debug, trace),
#      CLICKHOUSE_SERVER_BIN (default: /usr/sbin/clickhouse-server, else `/usr/bin/clickhouse server`).
set -euo pipefail

if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 <state-dir>" >&2
  exit 2
fi

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
http_port=${CLICKHOUSE_HTTP_PORT:-18123}
tcp_port=${CLICKHOUSE_TCP_PORT:-19000}
interserver_port=${CLICKHOUSE_INTERSERVER_PORT:-19009}
log_level=${CLICKHOUSE_LOG_LEVEL:-information}
case "$log_level" in
  trace|debug|information|notice|warning|error|critical|fatal|none) ;;
  *) echo "error: invalid CLICKHOUSE_LOG_LEVEL '$log_level'" >&2; exit 2 ;;
esac

for p in "$http_port" "$tcp_port" "$interserver_port"; do
  if ! [[ "$p" =~ ^[0-9]+$ ]] || [ "$p" -gt 65535 ]; then
    echo "error: invalid port '$p'" >&2
    exit 2
  fi
done
if [ "$http_port" -eq 0 ] || [ "$tcp_port" -eq 0 ]; then
  echo "error: CLICKHOUSE_HTTP_PORT and CLICKHOUSE_TCP_PORT must be non-zero" >&2
  exit 2
fi

mkdir -p "$1"
state=$(cd "$1" && pwd -P)
case "$state" in
  *[\&\<\>\"\']*) echo "error: state dir path must not contain & < > \" '" >&2; exit 2 ;;
esac

if [ -n "${CLICKHOUSE_SERVER_BIN:-}" ]; then
  server=("$CLICKHOUSE_SERVER_BIN")
elif [ -x /usr/sbin/clickhouse-server ]; then
  server=(/usr/sbin/clickhouse-server)
elif [ -x /usr/bin/clickhouse ]; then
  server=(/usr/bin/clickhouse server)
else
  echo "error: clickhouse-server not installed; run $here/install.sh (as root) or: apt-get install -y clickhouse-server clickhouse-client" >&2
  exit 1
fi

# Refuse early (before overwriting the rendered configs, which a running server would
# hot-reload) if another server already holds the lock on <state>/data/status.
if [ -e "$state/data/status" ] && command -v flock >/dev/null 2>&1 \
   && ! flock -n "$state/data/status" true; then
  echo "error: another clickhouse-server is already running on $state (data/status is locked)" >&2
  exit 1
fi

mkdir -p "$state/data" "$state/tmp" "$state/user_files" "$state/format_schemas" "$state/logs"

render() { # render <template> <output>
  local s
  s=$(<"$1")
  s=${s//@@STATE_DIR@@/"$state"}
  s=${s//@@HTTP_PORT@@/"$http_port"}
  s=${s//@@TCP_PORT@@/"$tcp_port"}
  s=${s//@@INTERSERVER_PORT@@/"$interserver_port"}
  s=${s//@@LOG_LEVEL@@/"$log_level"}
  if [ "$interserver_port" -eq 0 ]; then
    s=$(printf '%s\n' "$s" | grep -v '<interserver_http_')
  fi
  printf '%s\n' "$s" >"$2.tmp"
  mv -f "$2.tmp" "$2"
}
render "$here/config.xml.template" "$state/config.xml"
render "$here/users.xml.template" "$state/users.xml"

cd "$state"
exec "${server[@]}" --config-file="$state/config.xml"
