#!/usr/bin/env bash
# Interop: forward every dialect fixture through tracebridge (otlp,
# http/protobuf, semconv = openinference) to a real Arize Phoenix on
# loopback, and check what Phoenix stored. Phoenix gets its own venv.
#
# Usage: tests/interop/phoenix.sh [path/to/tracebridge]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${1:-$root/target/debug/tracebridge}"
venv="${PHOENIX_VENV:-$root/target/phoenix-venv}"
if [ ! -x "$bin" ]; then
  (cd "$root" && cargo build --quiet)
fi
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "arize-phoenix==20.26.1"
"$venv/bin/python" "$root/tests/interop/phoenix_check.py" "$bin" "$root/tests/fixtures/dialects"
