#!/usr/bin/env bash
# The Opik scenario side by side with Rotel, in one run of
# ../shared/perf/compare.sh: tracebridge forwards OTLP to the harness's sink
# exactly as in the OTLP scenarios AND maps every span to Opik rows for
# examples/opik_sink.rs (a stand-in that only counts rows, so it is never the
# bottleneck), while Rotel does its plain forwarding. tracebridge's CPU per
# span therefore covers decode, spool, OTLP export and the whole Opik path
# (normalise, assemble, JSON, gzip, POST); Rotel's only its forwarding.
#
# Usage (project root): benches/opik_beside_rotel.sh [compare.sh arguments]
#   e.g. benches/opik_beside_rotel.sh --transports http --sizes 100 --reps 3
# After the run it prints the rows the Opik stand-in counted and, per run,
# the spans the Opik destination had sent when the harness read the daemon's
# metrics: when that equals the accepted spans, the CPU figure includes all
# of the Opik work.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cargo build --release --quiet --locked --bin tracebridge --example opik_sink
work="$(mktemp -d)"
sink_pid=""
trap 'kill $sink_pid 2>/dev/null || true; rm -rf "$work"' EXIT
# The Opik stand-in runs on the load generator's core, like the OTLP sink.
taskset -c "${LOADGEN_CPUS:-1}" target/release/examples/opik_sink 2> "$work/sink.log" &
sink_pid=$!
for _ in $(seq 1 100); do grep -q 'listening on' "$work/sink.log" 2>/dev/null && break; sleep 0.05; done
sink_addr="$(sed -n 's/^listening on //p' "$work/sink.log")"
[ -n "$sink_addr" ] || { echo "opik_sink did not start" >&2; exit 1; }

results="${RESULTS_DIR:-${TMPDIR:-/tmp}/tracebridge-perf/results/opik-$(date +%Y%m%d-%H%M%S)}"
TB_EXTRA_TOML="
[destinations.opik]
type = \"opik\"
url = \"http://$sink_addr/api\"
" RESULTS_DIR="$results" ../shared/perf/compare.sh "$@"

echo "opik_sink rows (traces spans): $(curl -s "http://$sink_addr/count")"
for m in "$results"/tracebridge_*.metrics.txt; do
  [ -f "$m" ] || continue
  sent="$(awk '/^tracebridge_exporter_sent_spans_total\{destination="opik"\}/{print $2}' "$m")"
  accepted="$(awk '/^tracebridge_receiver_accepted_spans_total/{s += $2} END {print s}' "$m")"
  echo "$(basename "$m" .metrics.txt): accepted $accepted, sent to Opik ${sent:-0}"
done
