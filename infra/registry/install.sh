#!/usr/bin/env bash
# Install Apicurio Registry (Confluent-compatible API at /apis/ccompat/v7)
# from Maven Central.
#
#   install.sh <install-dir>
#
# Fetches io.apicurio:apicurio-registry-app:<version>:tar.gz:all with Maven
# (default local repo ~/.m2, so a second install on the same machine is
# offline) and unpacks it into <install-dir>:
#   <install-dir>/apicurio-registry-app-<version>-runner.jar, lib/, meta/
#   <install-dir>/app-cds.jsa   AppCDS archive (faster start; optional)
#   <install-dir>/.installed    marker, content "apicurio-registry-app <version>"
# Idempotent: if the marker matches, exits at once.
#
# Env: REGISTRY_VERSION (3.0.9; the only version verified here),
#      REGISTRY_JAVA (java binary; default $JAVA_HOME/bin/java, else java on PATH),
#      REGISTRY_CDS=0 to skip building the AppCDS archive,
#      MVN_ARGS extra Maven args, e.g. MVN_ARGS=-Dmaven.repo.local=/tmp/m2
set -euo pipefail

die() { echo "registry install.sh: $*" >&2; exit 1; }

[ $# -eq 1 ] || die "usage: install.sh <install-dir>"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
version=${REGISTRY_VERSION:-3.0.9}
want="apicurio-registry-app $version"
mkdir -p "$1"
install_dir=$(cd "$1" && pwd -P)
marker="$install_dir/.installed"
jar="$install_dir/apicurio-registry-app-$version-runner.jar"

installed() { [ -f "$marker" ] && [ "$(cat "$marker")" = "$want" ] && [ -f "$jar" ]; }

# Fast path.
if installed; then exit 0; fi

# Resolve java the same way start.sh does (the AppCDS archive is per-JVM).
if [ -n "${REGISTRY_JAVA:-}" ]; then java=$REGISTRY_JAVA
elif [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then java=$JAVA_HOME/bin/java
else java=$(command -v java || true)
fi
[ -n "$java" ] && [ -x "$java" ] ||
  die "java not found; install Java 17+: apt-get install -y openjdk-17-jre-headless"
command -v mvn >/dev/null 2>&1 ||
  die "mvn not found; install Maven: apt-get install -y maven"
jv=$("$java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
[ -n "$jv" ] && [ "$jv" -ge 17 ] ||
  die "Apicurio Registry $version needs Java >= 17 (found '${jv:-unknown}' at $java)"

# Serialise concurrent installs into the same dir.
exec 9>"$install_dir/.install.lock"
flock 9
if installed; then exit 0; fi

tmp="$install_dir/.install.tmp.$$"
rm -rf "$tmp"
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/dl" "$tmp/unpacked"

echo "registry install.sh: fetching Apicurio Registry $version into $install_dir (Maven Central)..." >&2
# maven-dependency-plugin is pinned to 2.8 on purpose: 3.x reads the artifact's
# POM, whose parent (io.apicurio:apicurio-registry:<v>) is NOT on Central, and
# fails with "Failed to read artifact descriptor". 2.8 just fetches the file.
# -C: fail on checksum mismatch.
# shellcheck disable=SC2086
if ! mvn -q -B -ntp -C -Dstyle.color=never ${MVN_ARGS:-} \
      org.apache.maven.plugins:maven-dependency-plugin:2.8:copy \
      "-Dartifact=io.apicurio:apicurio-registry-app:$version:tar.gz:all" \
      "-DoutputDirectory=$tmp/dl" >"$install_dir/install.log" 2>&1 </dev/null; then
  tail -n 30 "$install_dir/install.log" >&2
  die "mvn failed (full log: $install_dir/install.log)"
fi
tgz="$tmp/dl/apicurio-registry-app-$version-all.tar.gz"
[ -f "$tgz" ] || die "mvn ran but $tgz is missing"
tar --no-same-owner -xzf "$tgz" -C "$tmp/unpacked"
[ -f "$tmp/unpacked/apicurio-registry-app-$version-runner.jar" ] ||
  die "unexpected archive layout: no apicurio-registry-app-$version-runner.jar in $tgz"

# Replace any previous install (only the names this script creates).
rm -rf "$install_dir/lib" "$install_dir/meta" "$install_dir/app-cds.jsa" "$marker"
rm -f "$install_dir"/apicurio-registry-app-*-runner.jar
mv "$tmp/unpacked"/* "$install_dir/"

# AppCDS: start the registry once on a random loopback port, exercise the
# ccompat API, stop it; the JVM dumps the loaded classes at exit. Cuts
# start-to-ready roughly in half. Best effort: failure only costs speed.
if [ "${REGISTRY_CDS:-1}" != 0 ]; then
  echo "registry install.sh: building AppCDS archive (~15 s)..." >&2
  cds_state="$tmp/cds-state"
  cds_log="$tmp/cds.log"
  REGISTRY_JAVA=$java REGISTRY_PORT=0 REGISTRY_CDS_DUMP="$tmp/app-cds.jsa" \
    "$here/start.sh" "$install_dir" "$cds_state" >"$cds_log" 2>&1 &
  pid=$!
  port=""
  for _ in $(seq 1 1200); do
    kill -0 "$pid" 2>/dev/null || break
    port=$(sed -n 's|.*Listening on: http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$cds_log" | head -n1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  if [ -n "$port" ] && curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null; then
    base="http://127.0.0.1:$port/apis/ccompat/v7"
    ct='Content-Type: application/vnd.schemaregistry.v1+json'
    s1='{"schema":"{\"type\":\"record\",\"name\":\"W\",\"fields\":[{\"name\":\"a\",\"type\":\"string\"}]}"}'
    s2='{"schema":"{\"type\":\"record\",\"name\":\"W\",\"fields\":[{\"name\":\"a\",\"type\":\"string\"},{\"name\":\"b\",\"type\":\"int\"}]}"}'
    {
      curl -s -H "$ct" -X PUT -d '{"compatibility":"BACKWARD"}' "$base/config/warmup"
      curl -s -H "$ct" -d "$s1" "$base/subjects/warmup/versions"
      curl -s -H "$ct" -d "$s2" "$base/compatibility/subjects/warmup/versions/latest"
      curl -s -H "$ct" -d "$s2" "$base/subjects/warmup/versions"
      curl -s "$base/schemas/ids/1"; curl -s "$base/subjects/warmup/versions/latest"
      curl -s "$base/config/warmup"; curl -s "$base/subjects"
    } >/dev/null 2>&1 || true
  fi
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if [ -s "$tmp/app-cds.jsa" ]; then
    mv "$tmp/app-cds.jsa" "$install_dir/app-cds.jsa"
  else
    echo "registry install.sh: warning: AppCDS archive not built (start will be slower); log:" >&2
    tail -n 20 "$cds_log" >&2 || true
  fi
fi

echo "$want" > "$marker"
echo "registry install.sh: installed Apicurio Registry $version in $install_dir" >&2
