#!/usr/bin/env bash
# Run Apicurio Registry (Confluent-compatible API) on 127.0.0.1 in the FOREGROUND.
#
#   start.sh <install-dir> <state-dir>
#
# <install-dir> is what install.sh filled. <state-dir> gets tmp/ and, with
# REGISTRY_STORAGE=file, the H2 database (h2/registry.mv.db).
# The caller backgrounds this, keeps the pid (exec: it IS the java pid) and
# polls readiness:  GET http://127.0.0.1:$REGISTRY_PORT/health/ready  -> 200
# (body JSON with "status": "UP"). SIGTERM stops it cleanly.
# Confluent API base URL: http://127.0.0.1:$REGISTRY_PORT/apis/ccompat/v7
# Logs go to stdout/stderr (WARN and up, plus Quarkus' one-line start banner
# "... started in Xs. Listening on: http://127.0.0.1:PORT").
#
# The only socket opened is the HTTP listener (no management port, no 8080,
# no 9000, no outbound connections).
#
# Env: REGISTRY_PORT     (18081; 0 = random free port, see "Listening on" line)
#      REGISTRY_HOST     (127.0.0.1)
#      REGISTRY_HEAP     ("-Xmx256m -Xms64m")
#      REGISTRY_STORAGE  (mem = in-memory H2, empty on every start [default];
#                         file = H2 file in <state-dir>/h2, kept across restarts)
#      REGISTRY_LOG_LEVEL (WARN; INFO shows Apicurio's own start-up/audit lines)
#      REGISTRY_ACCESS_LOG (0; 1 logs every HTTP request)
#      REGISTRY_JAVA     (java binary; default $JAVA_HOME/bin/java, else java on PATH)
#      REGISTRY_JAVA_OPTS (extra JVM flags / -D overrides, appended last)
#      REGISTRY_CDS_DUMP (internal, used by install.sh to build the AppCDS archive)
set -euo pipefail

die() { echo "registry start.sh: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: start.sh <install-dir> <state-dir>"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
install_dir=$(cd "$1" 2>/dev/null && pwd -P) || die "install dir '$1' not found; run: $here/install.sh $1"
mkdir -p "$2"
state_dir=$(cd "$2" && pwd -P)

# shellcheck disable=SC2012
jar=$(ls "$install_dir"/apicurio-registry-app-*-runner.jar 2>/dev/null | head -n1 || true)
[ -n "$jar" ] && { [ -f "$install_dir/.installed" ] || [ -n "${REGISTRY_CDS_DUMP:-}" ]; } ||
  die "no complete install in $install_dir; run: $here/install.sh $install_dir"

if [ -n "${REGISTRY_JAVA:-}" ]; then java=$REGISTRY_JAVA
elif [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then java=$JAVA_HOME/bin/java
else java=$(command -v java || true)
fi
[ -n "$java" ] && [ -x "$java" ] ||
  die "java not found; install Java 17+: apt-get install -y openjdk-17-jre-headless"

port=${REGISTRY_PORT:-18081}
host=${REGISTRY_HOST:-127.0.0.1}
heap=${REGISTRY_HEAP:--Xmx256m -Xms64m}
level=${REGISTRY_LOG_LEVEL:-WARN}
access_log=false; [ "${REGISTRY_ACCESS_LOG:-0}" = 1 ] && access_log=true

# Fail fast if the port is taken: otherwise a caller polling /health/ready
# could get its answer from whatever already listens there.
if [ "$port" != 0 ] && (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
  die "something already listens on $host:$port (set REGISTRY_PORT)"
fi

tmp_dir="$state_dir/tmp"
mkdir -p "$tmp_dir"
case "${REGISTRY_STORAGE:-mem}" in
  mem)  db_url="jdbc:h2:mem:registry;DB_CLOSE_DELAY=-1" ;;
  file) mkdir -p "$state_dir/h2"; db_url="jdbc:h2:file:$state_dir/h2/registry" ;;
  *)    die "REGISTRY_STORAGE must be 'mem' or 'file' (got '$REGISTRY_STORAGE')" ;;
esac

# Fast start on a 2-core box: C1 only, serial GC, AppCDS archive from install.sh
# (silently ignored if it does not match this JVM).
# shellcheck disable=SC2206
jvm=($heap -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError
     -Xshare:auto -Xlog:cds=off -Xlog:cds+dynamic=off
     "-Djava.io.tmpdir=$tmp_dir")
if [ -n "${REGISTRY_CDS_DUMP:-}" ]; then
  jvm+=("-XX:ArchiveClassesAtExit=$REGISTRY_CDS_DUMP")
elif [ -f "$install_dir/app-cds.jsa" ]; then
  jvm+=("-XX:SharedArchiveFile=$install_dir/app-cds.jsa")
fi

props=(
  "-Dquarkus.http.host=$host"
  "-Dquarkus.http.port=$port"
  # Quarkus' separate management interface stays off (it would bind 9000);
  # /health/* is served on the main port.
  "-Dquarkus.management.enabled=false"
  "-Dapicurio.datasource.url=$db_url"
  # The stock pool opens 20 H2 connections eagerly; 1..10 is plenty here.
  "-Dapicurio.datasource.jdbc.initial-size=1"
  "-Dapicurio.datasource.jdbc.min-size=1"
  "-Dapicurio.datasource.jdbc.max-size=10"
  "-Dapicurio.import.work-dir=$tmp_dir"
  "-Dapicurio.storage.snapshot.location=$tmp_dir"
  # Quiet logs.
  "-Dquarkus.banner.enabled=false"
  "-Dquarkus.http.access-log.enabled=$access_log"
  "-Dquarkus.log.level=WARN"
  "-Dquarkus.log.category.\"io.apicurio\".level=$level"
  "-Dquarkus.log.category.\"io.quarkus\".level=INFO"
  "-Dquarkus.log.category.\"io.quarkus.runtime.configuration.DeprecatedRuntimePropertiesRecorder\".level=ERROR"
  "-Dquarkus.log.console.format=%d{yyyy-MM-dd HH:mm:ss,SSS} %-5p [%c{2.}] %s%e%n"
)

# shellcheck disable=SC2086
exec "$java" "${jvm[@]}" "${props[@]}" ${REGISTRY_JAVA_OPTS:-} -jar "$jar"
