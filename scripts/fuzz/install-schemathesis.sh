#!/usr/bin/env bash
# Installs the REST fuzzer (schemathesis, from PyPI) into a venv of its own, pinned, idempotent:
# a second run with the right version installed does nothing. Used by `earshot test` and by
# test/fuzz/rest-schemathesis.int.test.ts. Prints the path of the `st` executable last.
set -euo pipefail

SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
VENV="${EARSHOT_FUZZ_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/earshot/venv}"
ST="$VENV/bin/st"

if [ -x "$ST" ] && [ "$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" = "$SCHEMATHESIS_VERSION" ]; then
  echo "$ST"
  exit 0
fi

PYTHON="${PYTHON:-python3}"
if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "install-schemathesis: $PYTHON not found; install Python 3.9+ (Debian: apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)'; then
  echo "install-schemathesis: $("$PYTHON" --version 2>&1) is too old; schemathesis $SCHEMATHESIS_VERSION needs Python 3.9+" >&2
  exit 1
fi
if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "install-schemathesis: $PYTHON has no venv/ensurepip module (Debian: apt-get install python3-venv)" >&2
  exit 1
fi

mkdir -p "$(dirname "$VENV")"
# A venv whose interpreter no longer runs (Python upgraded or removed) is rebuilt.
if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" >&2; then
  echo "install-schemathesis: pip could not install schemathesis==$SCHEMATHESIS_VERSION from PyPI into $VENV (network? see above)" >&2
  exit 1
fi
"$ST" --version >&2
echo "$ST"
