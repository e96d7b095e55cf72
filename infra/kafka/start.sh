#!/usr/bin/env bash
# Run a single-node Kafka 4.x broker (KRaft) on 127.0.0.1 in the FOREGROUND.
#
#   start.sh <install-dir> <state-dir>
#
# <install-dir> is what install.sh filled (<install-dir>/libs). <state-dir> gets
# server.properties, data/ (formatted on first use) and logs/server.log.
# The caller backgrounds this, keeps the pid (exec: it IS the java pid) and
# waits for readiness, either of:
#   * the line "Kafka Server started" in <state-dir>/logs/server.log. This
#     script moves the previous run's server.log to server.log.prev, but a
#     caller polling right after launch may still see the old file for a few
#     ms: delete <state-dir>/logs/server.log BEFORE launching;
#   * a TCP connect to 127.0.0.1:KAFKA_PORT succeeding: the broker binds that
#     port last (after it is unfenced), ~5 ms before the log line.
# SIGTERM to the pid shuts the broker down cleanly (exit status 143, ~1-2 s).
# If java exits early, the cause is on stderr (one fatal line + causes) and in
# <state-dir>/logs/server.log.
#
# Env: KAFKA_PORT (19092), KAFKA_CONTROLLER_PORT (19093),
#      KAFKA_HEAP ("-Xmx1g -Xms1g", Kafka's own default), KAFKA_JVM_OPTS (extra JVM flags),
#      KAFKA_CLUSTER_ID (22-char base64url id; random on first format),
#      KAFKA_CDS (1: use the class-data-sharing archive install.sh made, if any;
#                 0: don't).
set -euo pipefail

die() { echo "kafka start.sh: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: start.sh <install-dir> <state-dir>"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
install_dir=$(cd "$1" 2>/dev/null && pwd) || die "install dir '$1' not found; run install.sh first"
mkdir -p "$2"
state_dir=$(cd "$2" && pwd)
libs="$install_dir/libs"

command -v java >/dev/null 2>&1 ||
  die "java not found; install OpenJDK 17: apt-get install -y openjdk-17-jre-headless"
ls "$libs"/.installed-* >/dev/null 2>&1 ||
  die "no complete install in $libs; run: $here/install.sh $install_dir"

port=${KAFKA_PORT:-19092}
ctl_port=${KAFKA_CONTROLLER_PORT:-19093}
# 1 GB, fixed, as Kafka's own scripts: with 384 MB a broker that had accumulated ~12,000
# partitions (test and bench namespaces over days) spent ~1 s in a full GC every ~5 s under
# the ingest bench's load (GC log, 2026-11-28), which showed up as publish p99 ~1 s; a heap
# that grows from a small -Xms also pays full GCs on the way up.
heap=${KAFKA_HEAP:--Xmx1g -Xms1g}
host=127.0.0.1
data_dir="$state_dir/data"
logs_dir="$state_dir/logs"
props="$state_dir/server.properties"
mkdir -p "$data_dir" "$logs_dir"
# Fresh server.log per run, so "Kafka Server started" in it means THIS run.
if [ -f "$logs_dir/server.log" ]; then
  mv -f "$logs_dir/server.log" "$logs_dir/server.log.prev"
  rm -f "$logs_dir"/server.log.[0-9]*
fi

# Render the template (escape sed replacement metacharacters in paths).
esc() { printf '%s' "$1" | sed -e 's/[\\|&]/\\&/g'; }
sed -e "s|@KAFKA_PORT@|$port|g" \
    -e "s|@KAFKA_CONTROLLER_PORT@|$ctl_port|g" \
    -e "s|@KAFKA_HOST@|$host|g" \
    -e "s|@KAFKA_DATA_DIR@|$(esc "$data_dir")|g" \
    "$here/server.properties.template" > "$props.tmp"
mv "$props.tmp" "$props"

# Fast start on a small box: C1 only + serial GC, plus the AppCDS archive that
# install.sh trained for this java binary (see README for timings). A stale or
# mismatching archive is ignored by the JVM (-Xshare:auto); its warning is muted.
cds=()
if [ "${KAFKA_CDS:-1}" = 1 ]; then
  jsa="$libs/kafka-cds-$(readlink -f "$(command -v java)" | cksum | cut -d' ' -f1).jsa"
  [ -f "$jsa" ] && cds=(-XX:SharedArchiveFile="$jsa" -Xlog:cds=off -Xlog:cds+dynamic=off)
fi
# shellcheck disable=SC2206
jvm=($heap
     -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData
     "${cds[@]}"
     -Djava.awt.headless=true
     -Dkafka.logs.dir="$logs_dir"
     -Dlog4j2.configurationFile="$here/log4j2.xml"
     ${KAFKA_JVM_OPTS:-})

# Format once; a formatted dir has meta.properties. --ignore-formatted keeps it
# idempotent even if that check is ever bypassed.
# The cluster id is kept in <state-dir>/cluster.id so a re-format of a
# half-formatted dir uses the same id (a different id makes format fail).
if [ ! -f "$data_dir/meta.properties" ]; then
  if [ -n "${KAFKA_CLUSTER_ID:-}" ]; then
    cid=$KAFKA_CLUSTER_ID
  elif [ -s "$state_dir/cluster.id" ]; then
    cid=$(cat "$state_dir/cluster.id")
  else
    cid=$(bash "$here/new-cluster-id.sh")
    printf '%s\n' "$cid" > "$state_dir/cluster.id"
  fi
  # "--cluster-id=<id>" in one word, so an id that does start with '-' (KAFKA_CLUSTER_ID, or a
  # cluster.id kept from before this rule) is still read as the value.
  if ! java "${jvm[@]}" -cp "$libs/*" kafka.tools.StorageTool format \
        "--cluster-id=$cid" -c "$props" --ignore-formatted > "$logs_dir/format.log" 2>&1; then
    cat "$logs_dir/format.log" >&2
    die "storage format failed (see $logs_dir/format.log)"
  fi
fi

exec java "${jvm[@]}" -cp "$libs/*" kafka.Kafka "$props"
