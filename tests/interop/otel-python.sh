#!/usr/bin/env bash
# Interop: the official OpenTelemetry Python SDK exports to a real tracebridge
# over gRPC, gRPC+gzip, HTTP/protobuf and HTTP/protobuf+gzip; every span must
# arrive at the file destination.
#
# Usage: tests/interop/otel-python.sh [path/to/tracebridge]
# Installs the SDK into a private venv (INTEROP_VENV, default target/interop-venv).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${1:-$root/target/debug/tracebridge}"
venv="${INTEROP_VENV:-$root/target/interop-venv}"
otel_version="1.45.2"

if [ ! -x "$bin" ]; then
  (cd "$root" && cargo build --quiet)
fi

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check \
  "opentelemetry-sdk==$otel_version" \
  "opentelemetry-exporter-otlp-proto-grpc==$otel_version" \
  "opentelemetry-exporter-otlp-proto-http==$otel_version"

work="$(mktemp -d)"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

cat > "$work/config.toml" <<TOML
state_dir = "$work/state"
[receiver]
grpc_listen = "127.0.0.1:0"
http_listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[log]
format = "json"
[destinations.archive]
type = "file"
path = "$work/spans.jsonl"
batch.flush_interval = "100ms"
TOML

"$bin" --config "$work/config.toml" > "$work/stdout.log" 2> "$work/stderr.log" &
pid=$!

addr() { # field name -> address from the "ready" log line
  "$venv/bin/python" - "$work/stderr.log" "$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    try:
        v = json.loads(line)
    except ValueError:
        continue
    if str(v.get("message", "")).endswith("ready"):
        print(v[sys.argv[2]])
        break
PY
}

for _ in $(seq 1 100); do
  if grep -q '"ready' "$work/stderr.log" 2>/dev/null; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then cat "$work/stderr.log"; echo "tracebridge exited early" >&2; exit 1; fi
  sleep 0.1
done
grpc_addr="$(addr grpc_addr)"
http_addr="$(addr http_addr)"
[ -n "$grpc_addr" ] && [ -n "$http_addr" ] || { cat "$work/stderr.log"; echo "tracebridge never became ready" >&2; exit 1; }

"$venv/bin/python" "$root/tests/interop/otel_python_export.py" "$grpc_addr" "$http_addr" "$work/exported.txt"

kill -TERM "$pid"
status=0
wait "$pid" || status=$?
pid=""
[ "$status" -eq 0 ] || { echo "tracebridge exited with $status after SIGTERM" >&2; exit 1; }

"$venv/bin/python" - "$work/exported.txt" "$work/spans.jsonl" <<'PY'
import json, sys
exported = {l.strip() for l in open(sys.argv[1]) if l.strip()}
records = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
received = {r["span_id"] for r in records}
missing = exported - received
services = sorted({r["resource"].get("service.name") for r in records})
print(f"exported {len(exported)} spans, file destination holds {len(received)} ({len(records)} records) from {services}")
if missing:
    sys.exit(f"{len(missing)} spans never arrived, e.g. {sorted(missing)[:5]}")
if len(records) != len(received):
    sys.exit("duplicate records in the file destination")
kids = [r for r in records if r["parent_span_id"]]
assert all(r["attributes"].get("gen_ai.request.model") == "gpt-4o" for r in kids), "attributes lost"
print("otel-python interop: OK")
PY
