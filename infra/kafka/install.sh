#!/usr/bin/env bash
# Install the Kafka broker classpath from Maven Central (via pom.xml beside this).
#
#   install.sh <install-dir>
#
# Fills <install-dir>/libs with kafka_2.13 + runtime deps + log4j2 binding and
# writes <install-dir>/libs/.installed-<kafka-version> (content: sha256 of
# pom.xml). Idempotent: if that marker matches, exits at once. Uses the default
# Maven local repo (~/.m2) unless MVN_ARGS says otherwise, e.g.
#   MVN_ARGS=-Dmaven.repo.local=/tmp/m2 install.sh /opt/kafka
#
# Then (unless KAFKA_CDS=0) it starts the broker once on two free loopback
# ports in a throw-away state dir and stops it, dumping an AppCDS archive
# (libs/kafka-cds-<java>.jsa) that roughly halves later start-up times. That
# training run is a smoke test too; if it fails, install still succeeds (no
# archive, a warning on stderr).
set -euo pipefail

die() { echo "kafka install.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: install.sh <install-dir>"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pom="$here/pom.xml"
version=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom" | head -n1)
[ -n "$version" ] || die "cannot read kafka.version from $pom"
mkdir -p "$1"
install_dir=$(cd "$1" && pwd)
libs="$install_dir/libs"
marker="$libs/.installed-$version"
want=$(sha256sum "$pom" | cut -d' ' -f1)

# Fast path: already installed from this exact pom.
if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then
  exit 0
fi

command -v java >/dev/null 2>&1 ||
  die "java not found; install OpenJDK 17: apt-get install -y openjdk-17-jre-headless maven"
command -v mvn >/dev/null 2>&1 ||
  die "mvn not found; install Maven: apt-get install -y maven openjdk-17-jre-headless"
jv=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
[ -n "$jv" ] && [ "$jv" -ge 17 ] ||
  die "Kafka $version needs Java >= 17 (found '${jv:-unknown}'); apt-get install -y openjdk-17-jre-headless"

# Serialise concurrent installs into the same dir.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$install_dir/.install.lock"
  flock 9
  if [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ]; then exit 0; fi
fi

tmp="$install_dir/libs.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "kafka install.sh: fetching Kafka $version into $libs (Maven Central)..." >&2
# shellcheck disable=SC2086
if ! mvn -q -B -ntp -Dstyle.color=never -f "$pom" \
      -Doutput.dir="$tmp" ${MVN_ARGS:-} \
      dependency:copy-dependencies@kafka-libs >"$install_dir/install.log" 2>&1; then
  tail -n 30 "$install_dir/install.log" >&2
  die "mvn failed (full log: $install_dir/install.log)"
fi
[ -f "$tmp/kafka_2.13-$version.jar" ] || die "mvn ran but kafka_2.13-$version.jar is missing in $tmp"

rm -rf "$libs"
mv "$tmp" "$libs"
printf '%s\n' "$want" > "$marker"
echo "kafka install.sh: Kafka $version installed in $libs" >&2

# ---- AppCDS training run (optional speed-up, never fails the install) ----
[ "${KAFKA_CDS:-1}" = 1 ] || exit 0
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_port() {
  local p i
  for i in $(seq 1 50); do
    p=$(( 20000 + (RANDOM * 32768 + RANDOM) % 30000 ))
    port_free "$p" && port_free $((p + 1)) && { echo "$p"; return 0; }
  done
  return 1
}
jsa="$libs/kafka-cds-$(readlink -f "$(command -v java)" | cksum | cut -d' ' -f1).jsa"
part="$jsa.part.$$"
train=$(mktemp -d "$install_dir/cds-train.XXXXXX")
kpid=""
trap '[ -n "$kpid" ] && kill -KILL "$kpid" 2>/dev/null; rm -rf "$train" "$part"' EXIT
trap 'exit 1' INT TERM
cds_ok=0
if p=$(pick_port); then
  KAFKA_CDS=0 KAFKA_PORT=$p KAFKA_CONTROLLER_PORT=$((p + 1)) \
    KAFKA_JVM_OPTS="-XX:ArchiveClassesAtExit=$part" \
    "$here/start.sh" "$install_dir" "$train" >"$train/out.log" 2>&1 &
  kpid=$!
  for _ in $(seq 1 1200); do   # up to ~120 s
    grep -qs "Kafka Server started" "$train/logs/server.log" && { cds_ok=1; break; }
    kill -0 "$kpid" 2>/dev/null || break
    sleep 0.1
  done
  kill -TERM "$kpid" 2>/dev/null || true
  for _ in $(seq 1 600); do kill -0 "$kpid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$kpid" 2>/dev/null && cds_ok=0
  wait "$kpid" 2>/dev/null || true
  kpid=""
fi
# Keep the archive only if the run got ready, the dump finished and the JVM
# accepts it (a truncated archive would crash the JVM at start).
if [ "$cds_ok" = 1 ] && [ -s "$part" ] &&
   java -XX:SharedArchiveFile="$part" -Xshare:on -XX:ErrorFile=/dev/null \
        -cp "$libs/*" -version >/dev/null 2>&1; then
  mv -f "$part" "$jsa"
  echo "kafka install.sh: start-up CDS archive written ($jsa)" >&2
else
  echo "kafka install.sh: warning: CDS training run failed; broker will start without it (see $install_dir/cds-train.log)" >&2
  cp -f "$train/out.log" "$install_dir/cds-train.log" 2>/dev/null || true
  cat "$train/logs/server.log" >>"$install_dir/cds-train.log" 2>/dev/null || true
fi
