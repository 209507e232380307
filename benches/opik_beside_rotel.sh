#!/usr/bin/env bash
# The Opik scenario side by side with Rotel, in one run of
# ../shared/perf/compare.sh: tracebridge forwards OTLP to the harness's sink
# exactly as in the OTLP scenarios AND maps every span to Opik rows for
# examples/opik_sink.rs (a stand-in that only counts rows, so it is never the
# bottleneck), while Rotel does its plain forwarding. tracebridge's CPU per
# span therefore covers decode, spool, OTLP export and the whole Opik path
# (normalise, assemble, JSON, gzip, POST); Rotel's only its forwarding.
#
# Usage (project root): benches/opik_beside_rotel.sh [--opik-only] [compare.sh arguments]
#   e.g. benches/opik_beside_rotel.sh --transports http --sizes 100 --reps 3
#
# --opik-only: tracebridge runs with the Opik destination alone (OTLP -> Opik:
# decode, spool, normalise, assemble, JSON, gzip, POST), Rotel still
# forwards. The harness counts spans at its OTLP sink, so the Opik stand-in
# relays a count of every batch of span rows there (OTLP/HTTP, N empty spans,
# sent from the sink's core): "forwarded" then means "delivered to Opik".
# The stand-in's own CPU counts as "other CPU" on that core, so runs are
# often marked noisy; the daemon's core is still its own.
# After the run it prints the rows the Opik stand-in counted and, per run,
# the spans the Opik destination had sent when the harness read the daemon's
# metrics: when that equals the accepted spans, the CPU figure includes all
# of the Opik work.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
opik_only=0
if [ "${1:-}" = "--opik-only" ]; then
  opik_only=1
  shift
fi
cargo build --release --quiet --locked --bin tracebridge --example opik_sink
work="$(mktemp -d)"
sink_pid=""
trap 'kill $sink_pid 2>/dev/null || true; rm -rf "$work"' EXIT
host="${HOST:-127.0.0.1}"
relay=""
if [ "$opik_only" = 1 ]; then
  relay="http://$host:${SINK_HTTP_PORT:-24318}/v1/traces"
fi
# The Opik stand-in runs on the load generator's core, like the OTLP sink.
OPIK_SINK_RELAY="$relay" taskset -c "${LOADGEN_CPUS:-1}" target/release/examples/opik_sink 2> "$work/sink.log" &
sink_pid=$!
for _ in $(seq 1 100); do grep -q 'listening on' "$work/sink.log" 2>/dev/null && break; sleep 0.05; done
sink_addr="$(sed -n 's/^listening on //p' "$work/sink.log")"
[ -n "$sink_addr" ] || { echo "opik_sink did not start" >&2; exit 1; }

results="${RESULTS_DIR:-${TMPDIR:-/tmp}/tracebridge-perf/results/opik-$(date +%Y%m%d-%H%M%S)}"
opik_toml="
[destinations.opik]
type = \"opik\"
url = \"http://$sink_addr/api\"
"
if [ "$opik_only" = 1 ]; then
  # The harness's receiver ports, an admin port for its metrics reads, and
  # a state directory of this run's own (the trace store starts empty).
  admin_port="${ADMIN_PORT:-$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
  cat > "$work/tracebridge.toml" <<EOF
state_dir = "$work/state"
[receiver]
grpc_listen = "$host:${DUT_GRPC_PORT:-14317}"
http_listen = "$host:${DUT_HTTP_PORT:-14318}"
[admin]
listen = "$host:$admin_port"
$opik_toml
EOF
  TB_CONFIG="$work/tracebridge.toml" ADMIN_PORT="$admin_port" RESULTS_DIR="$results" \
    ../shared/perf/compare.sh "$@"
else
  TB_EXTRA_TOML="$opik_toml" RESULTS_DIR="$results" ../shared/perf/compare.sh "$@"
fi

echo "opik_sink rows (traces spans): $(curl -s "http://$sink_addr/count")"
for m in "$results"/tracebridge_*.metrics.txt; do
  [ -f "$m" ] || continue
  sent="$(awk '/^tracebridge_exporter_sent_spans_total\{destination="opik"\}/{print $2}' "$m")"
  accepted="$(awk '/^tracebridge_receiver_accepted_spans_total/{s += $2} END {print s}' "$m")"
  echo "$(basename "$m" .metrics.txt): accepted $accepted, sent to Opik ${sent:-0}"
done
