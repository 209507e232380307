#!/usr/bin/env bash
# Interop: every trace and span tracebridge sends to Opik validates against
# the official `opik` package's write models (installed into a private venv;
# `opik` pins its own openai/litellm, so it gets a venv of its own).
#
# Usage: tests/interop/opik-models.sh [path/to/tracebridge]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${1:-$root/target/debug/tracebridge}"
venv="${OPIK_VENV:-$root/target/opik-venv}"
if [ ! -x "$bin" ]; then
  (cd "$root" && cargo build --quiet)
fi
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "opik==2.2.122"
"$venv/bin/python" "$root/tests/interop/opik_models_validate.py" "$bin" "$root/tests/fixtures/dialects"
